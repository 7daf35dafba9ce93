package revocation

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/testenv"
)

func TestParse(t *testing.T) {
	const id = "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11"
	tests := []struct {
		msg  string
		want Target
		ok   bool
	}{
		{"key:" + id, Target{Kind: KindKey, ID: id}, true},
		{"session:" + id, Target{Kind: KindSession, ID: id}, true},
		{id, Target{Kind: KindKey, ID: id}, true}, // published before sessions existed
		{" KEY:" + id, Target{}, false},
		{"session:" + "0B9F0E2C-8C4C-4A47-9A3E-0B9B4B1E7A11", Target{Kind: KindSession, ID: id}, true},
		{"*", Target{All: true}, true},
		{"user:" + id, Target{}, false},
		{"key:*", Target{}, false},
		{"", Target{}, false},
	}
	for _, tt := range tests {
		got, ok := Parse(tt.msg)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v", tt.msg, got, ok)
		}
		if ok && tt.msg == tt.want.Message() {
			if back, _ := Parse(got.Message()); back != got {
				t.Errorf("round trip of %q gave %+v", tt.msg, back)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("key:0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11")
	f.Add("*")
	f.Add("session:")
	f.Fuzz(func(t *testing.T, msg string) {
		got, ok := Parse(msg)
		if !ok {
			return
		}
		if back, ok2 := Parse(got.Message()); !ok2 || back != got {
			t.Fatalf("Parse(%q) = %+v does not round-trip", msg, got)
		}
	})
}

// TestPublishReachesListenerAndSurvivesARestart uses a real Redis: a
// published target arrives, and after Redis restarts the listener
// subscribes again and says so (the gateway flushes its cache then).
func TestPublishReachesListenerAndSurvivesARestart(t *testing.T) {
	rd := testenv.StartRedis(t)
	o, err := redisconn.Parse(rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := o.NewClient()
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var got []Target
	subscriptions := make(chan bool, 8)
	go Listen(ctx, client, Handlers{
		Revoke:     func(tg Target) { mu.Lock(); got = append(got, tg); mu.Unlock() },
		Subscribed: func(again bool) { subscriptions <- again },
		Lost:       func(error) {},
	})
	if again := <-subscriptions; again {
		t.Fatal("first subscription reported as a resubscription")
	}
	want := Session("0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11")
	if err := PublishOnce(ctx, rd.URL(), want, Target{All: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got[0] != want || !got[1].All {
		t.Fatalf("received %+v", got)
	}

	rd.Restart()
	select {
	case again := <-subscriptions:
		if !again {
			t.Fatal("resubscription not reported as one")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resubscription after a Redis restart")
	}
}

func TestNoRedisPublishesNothing(t *testing.T) {
	var p *Publisher
	if p.Enabled() {
		t.Fatal("nil publisher enabled")
	}
	if err := p.Publish(context.Background(), Key("x")); err != nil {
		t.Fatal(err)
	}
	if err := PublishOnce(context.Background(), "  ", Key("x")); err != nil {
		t.Fatal(err)
	}
}

// TestListenStopsAtOnceWhenCancelled: an idle subscription (blocked in a
// read go-redis bounds only by its 5 s timeout) ends as soon as ctx is
// cancelled, so unloading a gateway's config does not wait for it.
func TestListenStopsAtOnceWhenCancelled(t *testing.T) {
	rd := testenv.StartRedis(t)
	o, err := redisconn.Parse(rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := o.NewClient()
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	subscribed := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Listen(ctx, client, Handlers{Revoke: func(Target) {}, Subscribed: func(bool) { subscribed <- true }, Lost: func(error) {}})
	}()
	<-subscribed
	time.Sleep(100 * time.Millisecond) // blocked in the read by now
	start := time.Now()
	cancel()
	select {
	case <-done:
		t.Logf("Listen returned %s after cancel", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("Listen still running 2 s after its context was cancelled")
	}
}
