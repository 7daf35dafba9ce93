package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Gateways counts the gateways that share a Redis, for local mode to divide
// the policy by: every gateway adds itself every HeartbeatInterval to a
// sorted set (member: its id, score: Redis time in ms), drops members silent
// for AliveWindow, and reads the count, in one script call. When Redis is
// down the last count seen is kept; it is also written to a file, so a
// gateway that starts while Redis is down divides by the count it knew
// rather than believing it is alone.
type Gateways struct {
	client redis.UniversalClient
	id     string
	file   string // "" to keep nothing on disk

	alive    atomic.Int64 // at least 1
	lastBeat atomic.Int64 // unix ns of the last heartbeat attempt
	saved    atomic.Int64
}

// Heartbeat tuning (documented in docs/ratelimit.md).
const (
	HeartbeatInterval = 2 * time.Second
	AliveWindow       = 3 * HeartbeatInterval
	heartbeatTimeout  = 500 * time.Millisecond
	// GatewaysKey is the sorted set of gateways.
	GatewaysKey = "azen:rl:gateways"
)

// NewGatewayID names this process among the gateways: host-pid-random.
func NewGatewayID() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// NewGateways starts from the count kept in file, if any (1 otherwise). It
// makes no network call.
func NewGateways(client redis.UniversalClient, id, file string) *Gateways {
	g := &Gateways{client: client, id: id, file: file}
	g.alive.Store(1)
	if file != "" {
		if b, err := os.ReadFile(file); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n >= 1 && n <= 1_000_000 {
				g.alive.Store(n)
				g.saved.Store(n)
			}
		}
	}
	return g
}

// Count is the number of gateways last seen alive (at least 1).
func (g *Gateways) Count() int { return int(max(1, g.alive.Load())) }

// ID is this gateway's member name.
func (g *Gateways) ID() string { return g.id }

var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window * 2)
return redis.call('ZCARD', KEYS[1])
`)

// Run beats until ctx is done. Several configurations (routes, or old and
// new during a reload) may run it at once on one Gateways: whoever finds
// the last beat old enough beats, so the gateway beats about once per
// interval in all. first runs once after the first beat (script loading).
func (g *Gateways) Run(ctx context.Context, first func(context.Context)) {
	// Wait a moment first: `caddy validate` provisions and cancels at once,
	// and should make no network call.
	timer := time.NewTimer(250 * time.Millisecond)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if g.beat(ctx) && first != nil {
			first(ctx)
			first = nil
		}
		timer.Reset(HeartbeatInterval)
	}
}

// beat reports whether it asked Redis.
func (g *Gateways) beat(ctx context.Context) bool {
	now := time.Now().UnixNano()
	last := g.lastBeat.Load()
	if now-last < int64(HeartbeatInterval/2) || !g.lastBeat.CompareAndSwap(last, now) {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	n, err := heartbeatScript.Run(cctx, g.client, []string{GatewaysKey}, g.id, AliveWindow.Milliseconds()).Int64()
	if err == nil && n >= 1 {
		g.alive.Store(n)
		g.save(n)
	}
	// On error keep the count last seen: that is what local mode divides by.
	return true
}

// save writes n to the file when it changed (atomically: a temp file
// renamed over it). A file that cannot be written only loses the memory.
func (g *Gateways) save(n int64) {
	if g.file == "" || g.saved.Load() == n {
		return
	}
	if err := os.MkdirAll(filepath.Dir(g.file), 0o700); err != nil {
		return
	}
	tmp := g.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(n, 10)+"\n"), 0o600); err != nil {
		return
	}
	if os.Rename(tmp, g.file) == nil {
		g.saved.Store(n)
	}
}
