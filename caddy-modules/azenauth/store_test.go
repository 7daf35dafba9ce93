package azenauth

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestStore runs the same rules on both databases.
func TestStore(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
			if kind == "postgres" {
				url = pg.CreateDatabase(t)
			}
			testStoreRules(t, url)
		})
	}
	t.Run("postgres concurrent migrations", func(t *testing.T) {
		testConcurrentMigrations(t, pg.CreateDatabase(t))
	})
	t.Run("sqlite concurrent migrations", func(t *testing.T) {
		testConcurrentMigrations(t, "sqlite:"+filepath.Join(t.TempDir(), "keys.db"))
	})
}

func openTestStore(t *testing.T, url string) *Store {
	t.Helper()
	st, err := OpenStore(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func testStoreRules(t *testing.T, url string) {
	ctx := context.Background()
	st := openTestStore(t, url)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("second migration: %v", err)
	}
	org := "0b0e7a4c-1111-4a4a-8a8a-000000000001"
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	k, plain, err := st.Create(ctx, NewKey{OrganizationID: org, UserID: "alice", Name: "ci",
		ExpiresAt: expires, Tier: "pro", RateLimit: "120/m burst 20"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !WellFormed(plain) || k.Prefix != plain[:12] || !ValidUUID(k.ID) {
		t.Fatalf("created %+v with key %q", k, plain)
	}
	other, _, err := st.Create(ctx, NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000002", UserID: "bob"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("lookup by hash returns every field", func(t *testing.T) {
		got, err := st.ByHash(ctx, HashKey(plain))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != k.ID || got.OrganizationID != org || got.UserID != "alice" || got.Name != "ci" ||
			!got.Enabled || !got.ExpiresAt.Equal(expires) || got.Tier != "pro" || got.RateLimit != "120/m burst 20" ||
			got.CreatedAt.IsZero() || !got.LastUsedAt.IsZero() {
			t.Fatalf("got %+v, want %+v", got, k)
		}
		if o, _ := st.ByHash(ctx, HashKey(plain)); o.ID == other.ID {
			t.Fatal("wrong key")
		}
	})
	t.Run("unknown hash is ErrKeyNotFound", func(t *testing.T) {
		unknown, _ := GenerateKey()
		if _, err := st.ByHash(ctx, HashKey(unknown)); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("no expiry and no override read as zero values", func(t *testing.T) {
		got, err := st.ByID(ctx, other.ID)
		if err != nil || !got.ExpiresAt.IsZero() || got.RateLimit != "" || got.Tier != "" {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("list all and by organization", func(t *testing.T) {
		all, err := st.List(ctx, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("list: %d keys, %v", len(all), err)
		}
		mine, err := st.List(ctx, org)
		if err != nil || len(mine) != 1 || mine[0].ID != k.ID {
			t.Fatalf("list --org: %+v %v", mine, err)
		}
	})
	t.Run("disable, enable, delete", func(t *testing.T) {
		if err := st.SetEnabled(ctx, k.ID, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ByID(ctx, k.ID); got.Enabled {
			t.Fatal("still enabled")
		}
		if err := st.SetEnabled(ctx, k.ID, true); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ByID(ctx, k.ID); !got.Enabled {
			t.Fatal("still disabled")
		}
		if err := st.Delete(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ByID(ctx, other.ID); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("deleted key: %v", err)
		}
		missing := "0b0e7a4c-1111-4a4a-8a8a-00000000dead"
		if err := st.SetEnabled(ctx, missing, false); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("disable unknown: %v", err)
		}
		if err := st.Delete(ctx, missing); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("delete unknown: %v", err)
		}
	})
	t.Run("last_used_at only moves forward", func(t *testing.T) {
		at := time.Now().UTC().Truncate(time.Second)
		if err := st.TouchLastUsed(ctx, k.ID, at); err != nil {
			t.Fatal(err)
		}
		if err := st.TouchLastUsed(ctx, k.ID, at.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, _ := st.ByID(ctx, k.ID)
		if !got.LastUsedAt.Equal(at) {
			t.Fatalf("last_used_at %s, want %s", got.LastUsedAt, at)
		}
	})
}

func testConcurrentMigrations(t *testing.T, url string) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := OpenStore(url)
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			errs <- st.Migrate(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migration: %v", err)
		}
	}
	st := openTestStore(t, url)
	if _, _, err := st.Create(context.Background(), NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"}, time.Now()); err != nil {
		t.Fatal(err)
	}
}
