package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// BenchmarkReloadUnderPOSTLoad measures what `azen-gateway reload --force`
// costs clients that keep connections alive: 20 clients POST through the
// shipped Caddyfile to two stand-in replicas while the gateway reloads, one
// reload per iteration, one second apart. It reports requests and failed
// requests per reload and prints the failures by kind. Run it with
// scripts/measure-reload.sh; it is not part of `go test`.
func BenchmarkReloadUnderPOSTLoad(b *testing.B) {
	h1 := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 20 * time.Second}
	}
	shipped := func(s string) string { return s }
	withoutDrain := func(s string) string {
		i, j := strings.Index(s, "\t\tlistener_wrappers {"), strings.Index(s, "\t\ttimeouts {")
		if i < 0 || j < i {
			b.Fatal("the shipped Caddyfile has no listener_wrappers block before timeouts")
		}
		return s[:i] + s[j:]
	}
	h2c := func(s string) string {
		return strings.Replace(s, "\tservers {\n", "\tservers {\n\t\tprotocols h1 h2 h2c\n", 1)
	}
	for _, c := range []struct {
		name   string
		edit   func(string) string
		client func() *http.Client
		header string
	}{
		{"http1", shipped, h1, ""},
		{"http1_without_azen_drain", withoutDrain, h1, ""},
		{"http1_without_azen_drain_idempotency_key", withoutDrain, h1, "Idempotency-Key"},
		{"h2c_without_azen_drain", func(s string) string { return h2c(withoutDrain(s)) }, func() *http.Client {
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			return &http.Client{Transport: tr, Timeout: 20 * time.Second}
		}, ""},
	} {
		b.Run(c.name, func(b *testing.B) { benchReload(b, c.edit, c.client, c.header) })
	}
}

func benchReload(b *testing.B, edit func(string) string, newClient func() *http.Client, header string) {
	secret := testenv.GatewaySecret()
	var stubs []string
	for range 2 {
		stubs = append(stubs, startUpstream(b, verifying(secret)).Addr)
	}
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(b.TempDir(), "gateway.db"),
		"AZEN_GATEWAY_SECRET": secret,
		"AZEN_BACKENDS":       strings.Join(stubs, " "),
	}
	key := testenv.CreateKeyFull(b, env, "--rate", "1000000/m", "--burst", "1000000")
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(b), "Caddyfile"))
	if err != nil {
		b.Fatal(err)
	}
	caddyfile := edit(string(raw))
	gw := testenv.StartGateway(b, caddyfile, env)

	var (
		stop   atomic.Bool
		sent   atomic.Int64
		failed atomic.Int64
		mu     sync.Mutex
		kinds  = map[string]int{}
		wg     sync.WaitGroup
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient()
			for !stop.Load() {
				opts := []callOption{via(client), withKey(key.Key), withJSON(`{"text":"reload"}`)}
				if header != "" {
					opts = append(opts, withHeader(header, fmt.Sprint(sent.Load())))
				}
				sent.Add(1)
				r, err := tryCall("POST", gw.URL+"/api/v1/memory", opts...)
				kind := ""
				if err != nil {
					kind = errorKind(err)
				} else if r.status != 200 {
					kind = fmt.Sprintf("status %d", r.status)
				}
				if kind != "" {
					failed.Add(1)
					mu.Lock()
					kinds[kind]++
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	sent0, failed0 := sent.Load(), failed.Load()
	b.ResetTimer()
	for range b.N {
		if out, err := gw.ReloadForce(caddyfile); err != nil {
			b.Fatalf("reload: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	n := float64(b.N)
	b.ReportMetric(float64(sent.Load()-sent0)/n, "requests/reload")
	b.ReportMetric(float64(failed.Load()-failed0)/n, "failed/reload")
	var lines []string
	for k, v := range kinds {
		lines = append(lines, fmt.Sprintf("%6d  %s", v, k))
	}
	sort.Strings(lines)
	b.Logf("%d reloads, %d requests, %d failed:\n%s", b.N, sent.Load()-sent0, failed.Load()-failed0, strings.Join(lines, "\n"))
}

// errorKind names a client error without its addresses.
func errorKind(err error) string {
	s := err.Error()
	for _, k := range []string{"EOF", "connection reset by peer", "broken pipe", "connection refused", "timeout"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}
