package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestAClientsBadBodyNeverCountsAgainstAReplica is issue 9's attack: bodies
// over 1 MiB (chunked, HTTP/2 cleartext) and malformed chunked bodies, sent
// while another organization works. With passive health checks of one
// failure (max_fails 1), each of them used to take a replica out of
// rotation; now the gateway reads and bounds the body before it chooses a
// replica, answers 400, and no upstream records a failure.
func TestAClientsBadBodyNeverCountsAgainstAReplica(t *testing.T) {
	s := startSystemWith(t, 2, 1, func(c string) string {
		// HTTP/2 without TLS, as behind a load balancer that speaks h2c,
		// and a short read_body for the stalled upload.
		c = strings.Replace(c, "read_body 30s", "read_body 1s", 1)
		return strings.Replace(c, "\t\ttrusted_proxies_strict\n", "\t\ttrusted_proxies_strict\n\t\tprotocols h1 h2 h2c\n", 1)
	})
	gw := s.gateways[0]
	attacker := testenv.CreateKeyFull(t, s.env, "--user", "mallory", "--rate", "6000/m", "--burst", "1000")
	victim := testenv.CreateKeyFull(t, s.env, "--user", "alice", "--rate", "6000/m", "--burst", "1000")
	addr := fmt.Sprintf("127.0.0.1:%d", gw.Port)
	big := bytes.Repeat([]byte("a"), 1<<20+1000)

	attacks := map[string]func(t *testing.T) (int, error){
		"chunked body over 1 MiB": func(t *testing.T) (int, error) {
			return rawPost(addr, attacker.Key, "Transfer-Encoding: chunked\r\n", chunked(big))
		},
		"malformed chunk size": func(t *testing.T) (int, error) {
			return rawPost(addr, attacker.Key, "Transfer-Encoding: chunked\r\n", []byte("zz\r\n{}\r\n0\r\n\r\n"))
		},
		"HTTP/2 cleartext body over 1 MiB": func(t *testing.T) (int, error) {
			req, _ := http.NewRequest("POST", gw.URL+"/api/v1/memory", io.NopCloser(bytes.NewReader(big)))
			req.ContentLength = -1 // no length: sent as DATA frames until the end
			req.Header.Set("azen-api-key", attacker.Key)
			resp, err := h2cClient().Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("the attack went over %s, not HTTP/2", resp.Proto)
			}
			return resp.StatusCode, nil
		},
	}

	// The victim works throughout; every one of its requests must succeed.
	stop := make(chan struct{})
	var victimMu sync.Mutex
	victimStatuses := map[int]int{}
	var slowest time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			r, err := sysTry("POST", gw.URL+"/api/v1/memory", victim.Key, map[string]any{"text": "victim at work"})
			d := time.Since(start)
			victimMu.Lock()
			code := r.status
			if err != nil {
				code = -1
			}
			victimStatuses[code]++
			slowest = max(slowest, d)
			victimMu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	for name, attack := range attacks {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 4; i++ {
				// The gateway answers 400 and closes; over max_body it
				// first reads on for a while (a lingering close), so a
				// client still sending reads its 400, not a reset.
				code, err := attack(t)
				if err != nil || code != http.StatusBadRequest {
					t.Fatalf("attack %d answered %d (%v), want 400", i, code, err)
				}
			}
		})
	}
	// A client that stops sending its body past read_body, but is still
	// there, gets a 400 with the contract body (it used to get an empty 499
	// from the proxy).
	t.Run("an upload that stalls past read_body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		fmt.Fprintf(c, "POST /api/v1/memory HTTP/1.1\r\nHost: gw\r\nazen-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\":", attacker.Key)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to a stalled upload: %v", err)
		}
		e := getJSONError(t, resp, http.StatusBadRequest)
		if e.Message != "Request body was not received in time." || resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("message %q, request id %q", e.Message, resp.Header.Get("X-Request-Id"))
		}
	})
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	for _, u := range upstreamStates(t, gw.AdminAddr) {
		if u.Fails != 0 {
			t.Errorf("upstream %s has %d failures recorded: a client's body counted against it", u.Address, u.Fails)
		}
	}
	victimMu.Lock()
	defer victimMu.Unlock()
	if victimStatuses[201] == 0 || len(victimStatuses) != 1 {
		t.Errorf("the victim organization's statuses %v, want only 201", victimStatuses)
	}
	t.Logf("victim: %v, slowest request %s", victimStatuses, slowest)
}

// rawPost writes one POST by hand (so the body can be malformed) and reads
// the status line of the answer.
func rawPost(addr, key, headers string, body []byte) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		fmt.Fprintf(c, "POST /api/v1/memory HTTP/1.1\r\nHost: %s\r\nazen-api-key: %s\r\nContent-Type: application/json\r\n%s\r\n", addr, key, headers)
		_, _ = c.Write(body)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// chunked encodes b as one chunk and the last chunk.
func chunked(b []byte) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "%x\r\n", len(b))
	out.Write(b)
	out.WriteString("\r\n0\r\n\r\n")
	return out.Bytes()
}

// h2cClient speaks HTTP/2 without TLS.
func h2cClient() *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

type upstreamState struct {
	Address     string `json:"address"`
	NumRequests int    `json:"num_requests"`
	Fails       int    `json:"fails"`
}

// upstreamStates reads Caddy's admin view of the reverse proxy's upstreams.
func upstreamStates(t *testing.T, adminAddr string) []upstreamState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+adminAddr+"/reverse_proxy/upstreams", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []upstreamState
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out) == 0 {
		t.Fatalf("upstreams from the admin API: %v %v", out, err)
	}
	return out
}
