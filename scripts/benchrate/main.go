// Command benchrate sends HTTP GET requests at a fixed rate (an open loop:
// request i is due at start + i/rate whether or not earlier ones were
// answered) and prints one line: "rps p50_ms p99_ms requests non2xx".
// Latency counts from when a request was due, so a slow server's queueing
// shows in it (no coordinated omission). scripts/bench-gateway.sh uses it
// for the light-load figures.
//
//	benchrate -url http://127.0.0.1:8080/api/v1/memory -rate 1000 -duration 10s -header 'azen-api-key: azen_…'
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to GET")
	rate := flag.Float64("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 64, "most requests in flight (and connections)")
	header := flag.String("header", "", "one request header, 'Name: value'")
	flag.Parse()
	if *url == "" || *rate <= 0 || *duration <= 0 || *conns < 1 {
		fmt.Fprintln(os.Stderr, "usage: benchrate -url URL [-rate N] [-duration D] [-conns N] [-header 'K: V']")
		os.Exit(2)
	}
	name, value, _ := strings.Cut(*header, ":")
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true},
	}
	total := int(*rate * duration.Seconds())
	due := make(chan time.Time, total)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, total)
	var non2xx, failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range due {
				req, _ := http.NewRequest("GET", *url, nil)
				if name != "" {
					req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(at)
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					non2xx.Add(1)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / *rate)
	for i := 0; i < total; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		due <- at
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "benchrate: no answer")
		os.Exit(1)
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
	}
	fmt.Printf("%.2f %.3f %.3f %d %d\n", float64(len(lat))/elapsed.Seconds(), q(0.50), q(0.99), len(lat), non2xx.Load()+failed.Load())
}
