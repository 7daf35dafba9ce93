package azenauth

import (
	"strconv"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/ratespec"
)

func TestFailureLimitAllowsCountThenBlocks(t *testing.T) {
	l := newFailureLimiter(ratespec.Rate{Count: 3, Period: time.Minute}, 100)
	c := clientKey("203.0.113.9")
	now := time.Now()
	for i := 0; i < 3; i++ {
		if blocked, _ := l.Blocked(c, now); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail(c, now)
	}
	blocked, wait := l.Blocked(c, now)
	if !blocked || wait != 20*time.Second {
		t.Fatalf("after 3 failures: blocked %v, wait %s (want 20s)", blocked, wait)
	}
	if blocked, _ := l.Blocked(clientKey("203.0.113.10"), now); blocked {
		t.Fatal("another address is blocked")
	}
	if blocked, _ := l.Blocked(c, now.Add(20*time.Second)); blocked {
		t.Fatal("still blocked after the wait")
	}
}

func TestIPv6ClientsShareTheirSlash64(t *testing.T) {
	if clientKey("2001:db8:1:2::1") != clientKey("2001:db8:1:2:ffff::9") {
		t.Error("two addresses of one /64 are counted apart")
	}
	if clientKey("2001:db8:1:2::1") == clientKey("2001:db8:1:3::1") {
		t.Error("two /64s are counted together")
	}
	if clientKey("::ffff:192.0.2.1") != clientKey("192.0.2.1") {
		t.Error("an IPv4-mapped address differs from the IPv4 one")
	}
	if clientKey("fe80::1%eth0") != clientKey("fe80::1") {
		t.Error("the zone splits a client")
	}
}

func TestFailureLimiterIsBounded(t *testing.T) {
	l := newFailureLimiter(ratespec.Rate{Count: 1, Period: time.Hour}, 10)
	now := time.Now()
	for i := 0; i < 100; i++ {
		l.Fail(clientKey("198.51.100."+itoa(i)), now)
	}
	if n := len(l.tat); n > 10 {
		t.Fatalf("%d clients tracked, max 10", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
