// Package promreg registers Prometheus collectors on a registry that may
// already hold them. Caddy gives every config load its own registry and
// several handlers of one config share it, so "already registered" is the
// normal case, not an error.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds c to reg and returns the collector to use: c itself, or the
// one of the same type already registered under c's descriptors. A nil reg
// (tests, commands) registers nothing and returns c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// RegisterAll registers each collector, accepting any already registered.
func RegisterAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if _, err := Register(reg, c); err != nil {
			return err
		}
	}
	return nil
}
