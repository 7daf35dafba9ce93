package azenauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/revocation"
	"github.com/azen-sh/gateway/internal/testenv"
)

// TestRerolledSecretStopsAtTheEndOfItsGraceEvenWhenCached: both secrets
// work during the grace period; after it the old one is refused on the
// next request, answered from the cache (no store query), because every
// cached entry is checked against the clock.
func TestRerolledSecretStopsAtTheEndOfItsGraceEvenWhenCached(t *testing.T) {
	h, st := newTestHandler(t, func(h *Handler) { h.FailedAttempts = "1000/m" })
	h.rt.keys.ttl = 24 * time.Hour
	ctx, now := context.Background(), time.Now()
	k, old := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"})
	if s := serve(h, "203.0.113.1", keyHeader(old)); s.status != 0 {
		t.Fatalf("key refused before the reroll: %v", s.err)
	}
	_, fresh, err := st.keys.Reroll(ctx, "", k.ID, 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	h.rt.revoke(revocation.Key(k.ID)) // what `keys reroll` publishes
	h.now = func() time.Time { return now.Add(9 * time.Minute) }
	for _, key := range []string{old, fresh, old, fresh} {
		if s := serve(h, "203.0.113.1", keyHeader(key)); s.status != 0 {
			t.Fatalf("refused during the grace period: %v", s.err)
		}
	}
	queries := storeQueries(h)
	h.now = func() time.Time { return now.Add(10 * time.Minute) }
	if s := serve(h, "203.0.113.1", keyHeader(old)); s.status != 403 || s.message != msgExpired {
		t.Fatalf("old secret after the grace period: %d %q", s.status, s.message)
	}
	if s := serve(h, "203.0.113.1", keyHeader(fresh)); s.status != 0 {
		t.Fatalf("new secret refused: %v", s.err)
	}
	if storeQueries(h) != queries {
		t.Fatal("the store was asked: the test did not exercise cached entries")
	}
}

// TestSweepForgetsPreviousSecretsAfterTheirGrace: the runtime's sweep
// removes the hash of a previous secret once its grace period is over (and
// not before), drops the key from this gateway's cache and publishes the
// invalidation to the others.
func TestSweepForgetsPreviousSecretsAfterTheirGrace(t *testing.T) {
	rd := testenv.StartRedis(t)
	h, st := newTestHandler(t, func(h *Handler) { h.Redis = rd.URL(); h.FailedAttempts = "1000/m" })
	ctx, now := context.Background(), time.Now()
	org := "0b0e7a4c-1111-4a4a-8a8a-000000000001"
	ended, endedOld := mustCreate(t, st, apikey.NewKey{OrganizationID: org, UserID: "u"})
	running, runningOld := mustCreate(t, st, apikey.NewKey{OrganizationID: org, UserID: "u"})
	if _, _, err := st.keys.Reroll(ctx, "", ended.ID, time.Minute, now.Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, runningNew, err := st.keys.Reroll(ctx, "", running.ID, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	// Cache both keys under their old secrets, again if the flush that
	// follows the runtime's first subscription dropped them.
	h.rt.keys.ttl = 24 * time.Hour
	h.rt.start()
	waitSubscribed(t, rd.Addr())
	for deadline := time.Now().Add(5 * time.Second); ; {
		if s := serve(h, "203.0.113.1", keyHeader(endedOld)); s.status != 403 {
			t.Fatalf("secret past its grace period: %d", s.status)
		}
		if s := serve(h, "203.0.113.1", keyHeader(runningOld)); s.status != 0 {
			t.Fatalf("secret in its grace period: %v", s.err)
		}
		time.Sleep(20 * time.Millisecond)
		if p, _ := h.rt.keys.Len(); p == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two keys do not stay cached")
		}
	}

	sub := redis.NewClient(&redis.Options{Addr: rd.Addr()})
	defer sub.Close()
	ps := sub.Subscribe(ctx, revocation.Channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	// The loop, on a short interval (the runtime's own runs every minute).
	h.rt.wg.Add(1)
	go h.rt.sweepPrevious(20 * time.Millisecond)
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Payload != revocation.Key(ended.ID).Message() {
		t.Fatalf("published %q, want %q", msg.Payload, revocation.Key(ended.ID).Message())
	}
	if _, err := st.keys.ByHash(ctx, apikey.HashOf(endedOld)); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("the hash of a secret past its grace period is kept: %v", err)
	}
	if p, _ := h.rt.keys.Len(); p != 1 {
		t.Fatalf("%d cached keys after the sweep, want 1 (the swept key dropped)", p)
	}
	if s := serve(h, "203.0.113.1", keyHeader(endedOld)); s.status != 403 || s.message != msgUnknown {
		t.Fatalf("forgotten secret: %d %q", s.status, s.message)
	}
	// The secret still in its grace period is kept, and both of its
	// secrets work.
	if got, err := st.keys.ByHash(ctx, apikey.HashOf(runningOld)); err != nil || !got.ViaPrevious {
		t.Fatalf("secret in its grace period: %+v %v", got, err)
	}
	for _, key := range []string{runningOld, runningNew} {
		if s := serve(h, "203.0.113.1", keyHeader(key)); s.status != 0 {
			t.Fatalf("refused during the grace period: %v", s.err)
		}
	}
}

// TestSweepFailureIsReported: a store that cannot be asked is an error the
// loop logs, never a panic, and the next sweep tries again.
func TestSweepFailureIsReported(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	if err := h.rt.stores.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.forgetExpiredPrevious(context.Background(), time.Now()); err == nil {
		t.Fatal("no error from a closed store")
	}
}

func waitSubscribed(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := c.PubSubNumSub(context.Background(), revocation.Channel).Result()
		if err == nil && n[revocation.Channel] > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runtime did not subscribe within 10 s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
