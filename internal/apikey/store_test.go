package apikey

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/sqldb"
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
	db, err := sqldb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := NewStore(db)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

const (
	orgA = "0b0e7a4c-1111-4a4a-8a8a-000000000001"
	orgB = "0b0e7a4c-1111-4a4a-8a8a-000000000002"
)

func testStoreRules(t *testing.T, url string) {
	ctx := context.Background()
	st := openTestStore(t, url)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("second migration: %v", err)
	}
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	k, plain, err := st.Create(ctx, NewKey{OrganizationID: orgA, UserID: "alice", Name: "ci",
		ExpiresAt: expires, Tier: "pro", RateLimit: "120/m burst 20"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !WellFormed(plain) || k.Prefix != plain[:12] || len(k.ID) != 36 {
		t.Fatalf("created %+v with key %q", k, plain)
	}
	other, _, err := st.Create(ctx, NewKey{OrganizationID: orgB, UserID: "bob",
		Permissions: []string{KeysWrite, MemoryRead}, Quota: Quota{Limit: 500, Period: PeriodDay}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("lookup by hash returns every field", func(t *testing.T) {
		got, err := st.ByHash(ctx, HashOf(plain))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != k.ID || got.OrganizationID != orgA || got.UserID != "alice" || got.Name != "ci" ||
			!got.Enabled || !got.ExpiresAt.Equal(expires) || got.Tier != "pro" || got.RateLimit != "120/m burst 20" ||
			got.CreatedAt.IsZero() || !got.LastUsedAt.IsZero() || got.ViaPrevious || !got.Quota.IsZero() {
			t.Fatalf("got %+v, want %+v", got, k)
		}
	})
	t.Run("default permissions are memory read and write", func(t *testing.T) {
		got, _ := st.ByID(ctx, "", k.ID)
		if !slices.Equal(got.Permissions, DefaultPermissions) || !got.Has(MemoryWrite) || got.Has(KeysRead) {
			t.Fatalf("permissions %v", got.Permissions)
		}
	})
	t.Run("given permissions and quota are kept in order", func(t *testing.T) {
		got, _ := st.ByID(ctx, "", other.ID)
		if !slices.Equal(got.Permissions, []string{MemoryRead, KeysWrite}) || got.Quota != (Quota{500, PeriodDay}) {
			t.Fatalf("got %v %v", got.Permissions, got.Quota)
		}
	})
	t.Run("unknown hash is ErrNotFound", func(t *testing.T) {
		unknown, _ := Generate()
		if _, err := st.ByHash(ctx, HashOf(unknown)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("no expiry and no override read as zero values", func(t *testing.T) {
		got, err := st.ByID(ctx, "", other.ID)
		if err != nil || !got.ExpiresAt.IsZero() || got.RateLimit != "" || got.Tier != "" {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("ids are found in any case", func(t *testing.T) {
		if _, err := st.ByID(ctx, "", upper(k.ID)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another organization's key is not found", func(t *testing.T) {
		if _, err := st.ByID(ctx, orgB, k.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ByID across organizations: %v", err)
		}
		if err := st.SetEnabled(ctx, orgB, k.ID, false); !errors.Is(err, ErrNotFound) {
			t.Fatalf("disable across organizations: %v", err)
		}
		if err := st.Delete(ctx, orgB, k.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete across organizations: %v", err)
		}
		if _, err := st.Update(ctx, orgB, k.ID, Patch{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update across organizations: %v", err)
		}
		if _, _, err := st.Reroll(ctx, orgB, k.ID, 0, time.Now()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("reroll across organizations: %v", err)
		}
	})
	t.Run("list all and by organization", func(t *testing.T) {
		all, err := st.List(ctx, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("list: %d keys, %v", len(all), err)
		}
		mine, err := st.List(ctx, orgA)
		if err != nil || len(mine) != 1 || mine[0].ID != k.ID {
			t.Fatalf("list --org: %+v %v", mine, err)
		}
	})
	t.Run("update changes only the given fields", func(t *testing.T) {
		got, err := st.Update(ctx, orgA, k.ID, Patch{Tier: ptr("gold"), RateLimit: ptr(""),
			Permissions: []string{MemoryRead}, Quota: &Quota{Limit: 10, Period: PeriodMonth}, ExpiresAt: &time.Time{}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Tier != "gold" || got.RateLimit != "" || got.Name != "ci" || !got.ExpiresAt.IsZero() ||
			!slices.Equal(got.Permissions, []string{MemoryRead}) || got.Quota != (Quota{10, PeriodMonth}) {
			t.Fatalf("after update %+v", got)
		}
		if got, _ = st.Update(ctx, "", k.ID, Patch{Quota: &Quota{}}); !got.Quota.IsZero() {
			t.Fatalf("quota not removed: %+v", got.Quota)
		}
		if _, err := st.Update(ctx, "", k.ID, Patch{Permissions: []string{"admin"}}); err == nil {
			t.Fatal("an unknown permission was stored")
		}
	})
	t.Run("reroll keeps the id and, in the grace period, the old secret", func(t *testing.T) {
		now := time.Now()
		got, fresh, err := st.Reroll(ctx, orgA, k.ID, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != k.ID || fresh == plain || got.Prefix != fresh[:12] || got.Tier != "gold" {
			t.Fatalf("rerolled %+v", got)
		}
		viaNew, err := st.ByHash(ctx, HashOf(fresh))
		if err != nil || viaNew.ViaPrevious || viaNew.ID != k.ID {
			t.Fatalf("new secret: %+v %v", viaNew, err)
		}
		viaOld, err := st.ByHash(ctx, HashOf(plain))
		if err != nil || !viaOld.ViaPrevious || viaOld.PreviousExpired(now) || !viaOld.PreviousExpired(now.Add(time.Hour)) {
			t.Fatalf("old secret: %+v %v", viaOld, err)
		}
		changed, err := st.ForgetExpiredPrevious(ctx, now.Add(30*time.Minute))
		if err != nil || len(changed) != 0 {
			t.Fatalf("forgot early: %v %v", changed, err)
		}
		changed, err = st.ForgetExpiredPrevious(ctx, now.Add(time.Hour+time.Second))
		if err != nil || !slices.Equal(changed, []string{k.ID}) {
			t.Fatalf("forget: %v %v", changed, err)
		}
		if _, err := st.ByHash(ctx, HashOf(plain)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old secret's hash kept after its grace period: %v", err)
		}
		again, _, err := st.Reroll(ctx, "", k.ID, 0, now)
		if err != nil || !again.PreviousExpiresAt.IsZero() {
			t.Fatalf("reroll without grace: %+v %v", again, err)
		}
		if _, err := st.ByHash(ctx, HashOf(fresh)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("secret replaced without grace still found: %v", err)
		}
	})
	t.Run("disable, enable, delete", func(t *testing.T) {
		if err := st.SetEnabled(ctx, "", k.ID, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ByID(ctx, "", k.ID); got.Enabled {
			t.Fatal("still enabled")
		}
		if err := st.SetEnabled(ctx, orgA, k.ID, true); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ByID(ctx, "", k.ID); !got.Enabled {
			t.Fatal("still disabled")
		}
		if err := st.Delete(ctx, "", other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ByID(ctx, "", other.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted key: %v", err)
		}
		missing := "0b0e7a4c-1111-4a4a-8a8a-00000000dead"
		if err := st.SetEnabled(ctx, "", missing, false); !errors.Is(err, ErrNotFound) {
			t.Fatalf("disable unknown: %v", err)
		}
		if err := st.Delete(ctx, "", missing); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete unknown: %v", err)
		}
		if err := st.Delete(ctx, "", "not-a-uuid"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete malformed id: %v", err)
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
		got, _ := st.ByID(ctx, "", k.ID)
		if !got.LastUsedAt.Equal(at) {
			t.Fatalf("last_used_at %s, want %s", got.LastUsedAt, at)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func testConcurrentMigrations(t *testing.T, url string) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqldb.Open(url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- NewStore(db).Migrate(context.Background())
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
	if _, _, err := st.Create(context.Background(), NewKey{OrganizationID: orgA, UserID: "u"}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestParseQuota(t *testing.T) {
	tests := []struct {
		in      string
		want    Quota
		wantErr bool
	}{
		{"10000/month", Quota{10000, PeriodMonth}, false},
		{"500/day", Quota{500, PeriodDay}, false},
		{"", Quota{}, false},
		{"none", Quota{}, false},
		{"0/day", Quota{}, true},
		{"-1/day", Quota{}, true},
		{"10/week", Quota{}, true},
		{"10", Quota{}, true},
		{"ten/day", Quota{}, true},
		{"1000000000001/day", Quota{}, true},
	}
	for _, tt := range tests {
		got, err := ParseQuota(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseQuota(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestQuotaWindowIsTheUTCCalendarPeriod(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 59, 0, time.FixedZone("x", 3600))
	s, e := Quota{1, PeriodDay}.Window(at)
	if !s.Equal(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) || !e.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("day window %s – %s", s, e)
	}
	s, e = Quota{1, PeriodMonth}.Window(at)
	if !s.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !e.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("month window %s – %s", s, e)
	}
}

func TestParsePermissions(t *testing.T) {
	got, err := ParsePermissions("keys:write, memory:read memory:read")
	if err != nil || !slices.Equal(got, []string{MemoryRead, KeysWrite}) {
		t.Errorf("got %v %v", got, err)
	}
	for _, bad := range []string{"", " , ", "memory:admin", "MEMORY:READ"} {
		if _, err := ParsePermissions(bad); err == nil {
			t.Errorf("ParsePermissions(%q) accepted", bad)
		}
	}
}
