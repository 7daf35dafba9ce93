// Package revocation carries "drop this credential from your cache" over
// Redis pub/sub, from whoever changes a key or a session (the keys command,
// the console) to every gateway, so a change applies everywhere within a
// second (contract §4, §9). Messages are lost while a gateway is not
// subscribed; Listen therefore reports every (re)subscription, and the
// gateway flushes its cache then.
package revocation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/redisconn"
)

// Channel is the pub/sub channel. Its name predates sessions; a message
// names what to drop.
const Channel = "azen:keys:invalidate"

// Kinds of credential a message names.
const (
	KindKey     = "key"
	KindSession = "session"
)

// Target is what one message asks to drop: one credential by id, or (All)
// everything.
type Target struct {
	Kind string
	ID   string
	All  bool
}

// Key and Session name one credential.
func Key(id string) Target     { return Target{Kind: KindKey, ID: ids.Normalize(id)} }
func Session(id string) Target { return Target{Kind: KindSession, ID: ids.Normalize(id)} }

// Message is the wire form: "key:ID", "session:ID" or "*".
func (t Target) Message() string {
	if t.All {
		return "*"
	}
	return t.Kind + ":" + t.ID
}

// Parse reads a message. A bare UUID is a key (the form gateways published
// before sessions existed). Anything else is refused.
func Parse(msg string) (Target, bool) {
	msg = strings.TrimSpace(msg)
	if msg == "*" {
		return Target{All: true}, true
	}
	kind, id, ok := strings.Cut(msg, ":")
	if !ok {
		kind, id = KindKey, msg
	}
	if kind != KindKey && kind != KindSession {
		return Target{}, false
	}
	id, valid := ids.Parse(id)
	if !valid {
		return Target{}, false
	}
	return Target{Kind: kind, ID: id}, true
}

// Publisher sends revocations. The zero value (no Redis) sends nothing:
// gateways then apply changes within their cache_ttl.
type Publisher struct {
	client redis.UniversalClient
}

// NewPublisher uses client; nil means no Redis.
func NewPublisher(client redis.UniversalClient) *Publisher { return &Publisher{client: client} }

// Enabled reports whether revocations reach the gateways at once.
func (p *Publisher) Enabled() bool { return p != nil && p.client != nil }

// Publish sends every target, in one pipeline.
func (p *Publisher) Publish(ctx context.Context, targets ...Target) error {
	if !p.Enabled() || len(targets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := p.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, t := range targets {
			pl.Publish(ctx, Channel, t.Message())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish revocation: %w", err)
	}
	return nil
}

// PublishOnce connects to redisURL (nothing to do when it is empty), sends
// the targets and disconnects: for one-shot commands such as `keys disable`.
func PublishOnce(ctx context.Context, redisURL string, targets ...Target) error {
	if strings.TrimSpace(redisURL) == "" {
		return nil
	}
	o, err := redisconn.Parse(redisURL)
	if err != nil {
		return err
	}
	client := o.NewClient()
	defer client.Close()
	return NewPublisher(client).Publish(ctx, targets...)
}

// Handlers are what Listen reports.
type Handlers struct {
	// Revoke is called for each well-formed message.
	Revoke func(Target)
	// Subscribed is called after every (re)subscription: messages sent
	// while not subscribed are lost, so the listener should flush.
	Subscribed func(again bool)
	// Lost is called once when the subscription fails, with the cause.
	Lost func(err error)
}

// Listen follows the channel until ctx is done, subscribing again with
// back-off after any failure.
func Listen(ctx context.Context, client redis.UniversalClient, h Handlers) {
	const maxBackoff = 2 * time.Second
	backoff := 50 * time.Millisecond
	lost := false
	everSubscribed := false
	for ctx.Err() == nil {
		ps := client.Subscribe(ctx, Channel)
		// A blocked read does not watch ctx (go-redis bounds it only by its
		// 5 s idle timeout): closing the subscription ends it at once, so
		// stopping a gateway or unloading a config does not wait.
		unblock := context.AfterFunc(ctx, func() { _ = ps.Close() })
		err := receive(ctx, ps, h, func() {
			backoff = 50 * time.Millisecond
			h.Subscribed(everSubscribed)
			everSubscribed = true
			lost = false
		})
		unblock()
		_ = ps.Close()
		if ctx.Err() != nil {
			return
		}
		if !lost {
			h.Lost(err)
			lost = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func receive(ctx context.Context, ps *redis.PubSub, h Handlers, subscribed func()) error {
	const idle = 5 * time.Second
	for {
		msg, err := ps.ReceiveTimeout(ctx, idle)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			if isTimeout(err) {
				// Nothing for a while: make sure the connection is alive.
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed()
			}
		case *redis.Message:
			if t, ok := Parse(m.Payload); ok {
				h.Revoke(t)
			}
		}
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
