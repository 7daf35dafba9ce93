package usage

import (
	"context"
	"sync"
	"time"
)

// Writer is where a Meter's counts go (a *Store).
type Writer interface {
	Add(ctx context.Context, counts []Count) error
}

// Event is one admitted request.
type Event struct {
	OrganizationID string
	CredentialKind string
	CredentialID   string
	Group          string
	Outcome        string
}

type countKey struct {
	day string
	Event
}

// Meter adds up events in memory and writes them in batches. Record never
// touches the database; Flush writes and, when the write fails, keeps the
// counts for the next try, so a database outage loses nothing and a crash
// loses at most what was counted since the last flush.
type Meter struct {
	w Writer

	mu      sync.Mutex
	counts  map[countKey]int64
	day     string // the UTC day of dayEnd-24h, formatted once a day
	dayEnd  int64  // Unix seconds at which day ends
	flushMu sync.Mutex
}

// NewMeter returns a meter writing to w.
func NewMeter(w Writer) *Meter {
	return &Meter{w: w, counts: make(map[countKey]int64)}
}

// Record counts one event at time at.
func (m *Meter) Record(ev Event, at time.Time) {
	sec := at.Unix()
	m.mu.Lock()
	if sec >= m.dayEnd || sec < m.dayEnd-86400 {
		d := at.UTC()
		start := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
		m.day, m.dayEnd = start.Format(time.DateOnly), start.Unix()+86400
	}
	m.counts[countKey{m.day, ev}]++
	m.mu.Unlock()
}

// Pending is the number of distinct rows not yet written.
func (m *Meter) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.counts)
}

// Flush writes everything counted so far. On failure the counts are put
// back, to be written by a later Flush.
func (m *Meter) Flush(ctx context.Context) error {
	m.flushMu.Lock() // one write at a time: a retried batch is never written twice
	defer m.flushMu.Unlock()
	m.mu.Lock()
	taken := m.counts
	m.counts = make(map[countKey]int64, len(taken))
	m.mu.Unlock()
	if len(taken) == 0 {
		return nil
	}
	batch := make([]Count, 0, len(taken))
	for k, n := range taken {
		batch = append(batch, Count{
			Day: k.day, OrganizationID: k.OrganizationID, CredentialKind: k.CredentialKind,
			CredentialID: k.CredentialID, Group: k.Group, Outcome: k.Outcome, Requests: n,
		})
	}
	if err := m.w.Add(ctx, batch); err != nil {
		m.mu.Lock()
		for k, n := range taken {
			m.counts[k] += n
		}
		m.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every interval until ctx is done, then once more with
// finalTimeout. Failures go to onError (which should rate-limit its log).
func (m *Meter) Run(ctx context.Context, interval, finalTimeout time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
			if err := m.Flush(fctx); err != nil {
				onError(err)
			}
			cancel()
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, interval)
			if err := m.Flush(fctx); err != nil && ctx.Err() == nil {
				onError(err)
			}
			cancel()
		}
	}
}
