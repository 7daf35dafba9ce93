package azenratelimit

import (
	"strconv"
	"testing"
)

func TestOverrideCacheParsesEachTextOnceAndStaysBounded(t *testing.T) {
	var c overrideCache
	p, err := c.policy("120/m burst 20")
	if err != nil || p.Rate.Count != 120 || p.Burst != 20 || p.Name != overridePolicyName {
		t.Fatalf("policy %+v, %v", p, err)
	}
	if again, err := c.policy("120/m burst 20"); err != nil || again != p {
		t.Fatalf("the cached policy differs: %+v, %v", again, err)
	}
	if _, err := c.policy("fast"); err == nil {
		t.Fatal("a malformed override was accepted")
	}
	if _, err := c.policy("fast"); err == nil {
		t.Fatal("a malformed override was accepted from the cache")
	}
	for i := range 3 * maxOverrides {
		if _, err := c.policy(strconv.Itoa(i+1) + "/m"); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.n.Load(); n > maxOverrides {
		t.Fatalf("%d overrides held, at most %d", n, maxOverrides)
	}
}
