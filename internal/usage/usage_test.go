package usage

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
)

func TestGroup(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"POST", "/api/v1/memory", GroupCreate},
		{"GET", "/api/v1/memory", GroupRead},
		{"POST", "/api/v1/memory/search", GroupSearch},
		{"GET", "/api/v1/memory/0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11", GroupRead},
		{"PATCH", "/api/v1/memory/x", GroupUpdate},
		{"DELETE", "/api/v1/memory/x", GroupDelete},
		{"GET", "/api/v1/memory/search", GroupOther}, // search is a POST
		{"PUT", "/api/v1/memory/x", GroupOther},
		{"GET", "/api/v1/memory/x/y", GroupOther},
		{"GET", "/api/v1/memoryx", GroupOther},
		{"GET", "/console/api/keys", GroupOther},
	}
	for _, tt := range tests {
		if got := Group(tt.method, tt.path); got != tt.want {
			t.Errorf("Group(%s %s) = %s, want %s", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestStoreAddsUp(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			url := "sqlite:" + filepath.Join(t.TempDir(), "usage.db")
			if kind == "postgres" {
				url = pg.CreateDatabase(t)
			}
			db, err := sqldb.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			st := NewStore(db)
			ctx := context.Background()
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			const org = "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11"
			row := func(day, cred, group, outcome string, n int64) Count {
				return Count{Day: day, OrganizationID: org, CredentialKind: "key", CredentialID: cred, Group: group, Outcome: outcome, Requests: n}
			}
			// Two gateways flushing the same rows: the counts add up.
			for i := 0; i < 2; i++ {
				if err := st.Add(ctx, []Count{
					row("2026-12-01", "k1", GroupCreate, OutcomeSuccess, 3),
					row("2026-12-01", "k2", GroupCreate, OutcomeSuccess, 1),
					row("2026-12-02", "k1", GroupSearch, OutcomeRateLimited, 2),
				}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := st.Daily(ctx, Filter{OrganizationID: org, From: "2026-12-01", To: "2026-12-31"})
			if err != nil {
				t.Fatal(err)
			}
			want := []Count{
				{Day: "2026-12-01", Group: GroupCreate, Outcome: OutcomeSuccess, Requests: 8},
				{Day: "2026-12-02", Group: GroupSearch, Outcome: OutcomeRateLimited, Requests: 4},
			}
			if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("Daily = %+v, want %+v", got, want)
			}
			got, _ = st.Daily(ctx, Filter{OrganizationID: org, From: "2026-12-01", To: "2026-12-01", CredentialID: "k2"})
			if len(got) != 1 || got[0].Requests != 2 {
				t.Fatalf("Daily for one key = %+v", got)
			}
			got, _ = st.Daily(ctx, Filter{OrganizationID: "0b9f0e2c-8c4c-4a47-9a3e-000000000000", From: "2026-12-01", To: "2026-12-31"})
			if len(got) != 0 {
				t.Fatalf("another organization sees %+v", got)
			}
			big := make([]Count, 0, 450)
			for i := 0; i < 450; i++ {
				big = append(big, row("2026-11-01", "k"+string(rune('a'+i%26))+string(rune('a'+i/26)), GroupRead, OutcomeSuccess, 1))
			}
			if err := st.Add(ctx, big); err != nil {
				t.Fatalf("a batch over one statement's rows: %v", err)
			}
			got, _ = st.Daily(ctx, Filter{OrganizationID: org, From: "2026-11-01", To: "2026-11-01"})
			if len(got) != 1 || got[0].Requests != 450 {
				t.Fatalf("450 rows summed to %+v", got)
			}
		})
	}
}

type flakyWriter struct {
	mu   sync.Mutex
	fail bool
	got  map[string]int64
}

func (w *flakyWriter) Add(_ context.Context, counts []Count) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return errors.New("database down")
	}
	for _, c := range counts {
		w.got[c.Day+" "+c.CredentialID+" "+c.Outcome] += c.Requests
	}
	return nil
}

func TestMeterKeepsCountsUntilAWriteSucceeds(t *testing.T) {
	w := &flakyWriter{fail: true, got: map[string]int64{}}
	m := NewMeter(w)
	at := time.Date(2026, 12, 1, 23, 59, 59, 0, time.UTC)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				m.Record(Event{OrganizationID: "o", CredentialKind: "key", CredentialID: "k", Group: GroupRead, Outcome: OutcomeSuccess}, at)
			}
		}()
	}
	wg.Wait()
	m.Record(Event{OrganizationID: "o", CredentialKind: "key", CredentialID: "k", Group: GroupRead, Outcome: OutcomeError}, at.Add(time.Second))
	if err := m.Flush(context.Background()); err == nil {
		t.Fatal("flush to a failing writer reported success")
	}
	if m.Pending() != 2 {
		t.Fatalf("pending %d rows after a failed flush, want 2", m.Pending())
	}
	w.fail = false
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.got["2026-12-01 k success"] != 800 || w.got["2026-12-02 k error"] != 1 || m.Pending() != 0 {
		t.Fatalf("written %v, pending %d", w.got, m.Pending())
	}
}

func TestMeterRunFlushesOnStop(t *testing.T) {
	w := &flakyWriter{got: map[string]int64{}}
	m := NewMeter(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Run(ctx, time.Hour, time.Second, func(err error) { t.Error(err) })
		close(done)
	}()
	m.Record(Event{CredentialID: "k", Outcome: OutcomeSuccess}, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	cancel()
	<-done
	if w.got["2026-01-02 k success"] != 1 {
		t.Fatalf("written %v", w.got)
	}
}
