package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func counter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "azen_test_total", Help: "t"}, []string{"x"})
}

func TestRegisterReusesTheCollectorAlreadyThere(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := Register(reg, counter())
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, counter())
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("the second registration did not return the first collector")
	}
	second.WithLabelValues("a").Inc()
	fams, _ := reg.Gather()
	if len(fams) != 1 || fams[0].Metric[0].Counter.GetValue() != 1 {
		t.Fatalf("gathered %v", fams)
	}
}

func TestRegisterRefusesAClashingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := Register(reg, counter()); err != nil {
		t.Fatal(err)
	}
	// Same name, other labels: a real conflict, not a reuse.
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "azen_test_total", Help: "t"}, []string{"y"})
	if _, err := Register(reg, other); err == nil {
		t.Fatal("a collector with the same name and other labels was accepted")
	}
	if err := RegisterAll(nil, counter()); err != nil {
		t.Fatalf("nil registry: %v", err)
	}
}
