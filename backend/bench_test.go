package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
	"io"
	"log/slog"
)

const benchMemories = 10000

// benchCorpus makes n memories of 20–80 words drawn from a Zipf
// distribution over a 5000-word vocabulary, like natural text: a few words
// are in most memories, most words in few.
type benchCorpus struct {
	vocab []string
	zipf  *rand.Zipf
	rng   *rand.Rand
}

func newBenchCorpus(seed uint64) *benchCorpus {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	c := &benchCorpus{rng: rng, zipf: rand.NewZipf(rng, 1.1, 2, 4999)}
	for i := range 5000 {
		c.vocab = append(c.vocab, fmt.Sprintf("w%sx%d", strings.Repeat("o", i%7), i))
	}
	return c
}

func (c *benchCorpus) words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = c.vocab[c.zipf.Uint64()]
	}
	return strings.Join(ws, " ")
}

func (c *benchCorpus) text() string { return c.words(20 + c.rng.IntN(61)) }

// percentiles reports p50 and p99 of the observed latencies in ms.
func percentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50_ms")
	b.ReportMetric(at(0.99), "p99_ms")
}

// BenchmarkPostgres10k measures create, get and search on PostgreSQL with
// 10 000 memories in one organization. The setup runs only under -bench.
func BenchmarkPostgres10k(b *testing.B) {
	pg := testenv.StartPostgres(b)
	benchStore(b, pg.CreateDatabase(b))
}

// BenchmarkSQLite10k is the same on the embedded default.
func BenchmarkSQLite10k(b *testing.B) {
	benchStore(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
}

func benchStore(b *testing.B, url string) {
	s := mustOpenStore(b, url, mustKeys(b, testenv.EncryptionKeys("bench")))
	ctx := context.Background()

	start := time.Now()
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newBenchCorpus(uint64(w) + 1)
			for range benchMemories / 8 {
				created, err := s.Create(ctx, NewMemory{OrgID: orgA, UserID: fmt.Sprint("user", c.rng.IntN(10)), Text: c.text()})
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, created.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	analyze := `VACUUM ANALYZE`
	if s.db.Kind == sqldb.SQLite {
		analyze = `ANALYZE`
	}
	if _, err := s.db.Exec(analyze); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d memories in %s", len(ids), time.Since(start).Round(time.Millisecond))

	b.Run("create", func(b *testing.B) {
		c := newBenchCorpus(99)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			if _, err := s.Create(ctx, NewMemory{OrgID: orgB, UserID: "u", Text: c.text()}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		percentiles(b, lat)
	})
	b.Run("get", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		i := 0
		for b.Loop() {
			t0 := time.Now()
			if _, err := s.Get(ctx, orgA, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			i++
		}
		percentiles(b, lat)
	})
	searchBench := func(words int, userID string) func(b *testing.B) {
		return func(b *testing.B) {
			c := newBenchCorpus(7)
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				q := c.words(words)
				t0 := time.Now()
				if _, err := s.Search(ctx, orgA, userID, q, 5); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			percentiles(b, lat)
		}
	}
	b.Run("search-1-word", searchBench(1, ""))
	b.Run("search-3-words", searchBench(3, ""))
	b.Run("search-8-words", searchBench(8, ""))
	b.Run("search-3-words-userId", searchBench(3, "user3"))

	// The same search over HTTP: signature check, decoding, JSON.
	signer, _ := contract.NewSigner(testenv.GatewaySecret())
	srv := httptest.NewServer(newServer(s, signer, slog.New(slog.NewJSONHandler(io.Discard, nil))))
	defer srv.Close()
	b.Run("http-search-3-words", func(b *testing.B) {
		c := newBenchCorpus(11)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			body := `{"query":"` + c.words(3) + `","topK":5}`
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/memory/search", strings.NewReader(body))
			signer.SignRequest(req, keyIdentity, contract.BodySHA256([]byte(body)), time.Now())
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
			lat = append(lat, time.Since(t0))
		}
		percentiles(b, lat)
	})
}
