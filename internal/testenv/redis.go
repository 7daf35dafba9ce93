package testenv

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const installRedis = "apt-get update && apt-get install -y redis-server"

// Redis is a private redis-server in a temporary folder.
type Redis struct {
	t       testing.TB
	Port    int
	dir     string
	bin     string
	cluster bool
	env     map[string]string // added to the server's environment
	proc    *Process
}

// StartRedis starts a private, non-persistent Redis server.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := newRedis(t, false)
	r.Start()
	return r
}

func newRedis(t testing.TB, cluster bool) *Redis {
	t.Helper()
	bin := lookBinary(t, "redis-server", nil, installRedis)
	return &Redis{t: t, Port: FreePort(t), dir: t.TempDir(), bin: bin, cluster: cluster}
}

// Start starts the server (again) on the same port.
func (r *Redis) Start() {
	r.t.Helper()
	args := []string{
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
	}
	if r.cluster {
		args = append(args, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(r.dir, "nodes.conf"),
			"--cluster-node-timeout", "2000")
	}
	r.proc = StartProcess(r.t, "redis-server:"+strconv.Itoa(r.Port), r.bin, args, r.env)
	WaitForPort(r.t, r.Addr(), 10*time.Second)
}

// Stop kills the server, as a crash would. Its data is lost.
func (r *Redis) Stop() {
	if r.proc != nil {
		r.proc.Kill()
		r.proc = nil
	}
}

// Restart stops and starts the server.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	r.Start()
}

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr() }

// RedisCluster is a private Redis Cluster of masters without replicas.
type RedisCluster struct {
	Nodes []*Redis
}

// StartRedisCluster starts n (at least 3) cluster nodes, joins them with
// redis-cli --cluster create and waits until the cluster is ready.
func StartRedisCluster(t testing.TB, n int) *RedisCluster {
	t.Helper()
	if n < 3 {
		n = 3
	}
	cli := lookBinary(t, "redis-cli", nil, "apt-get update && apt-get install -y redis-tools")
	c := &RedisCluster{}
	var addrs []string
	for i := 0; i < n; i++ {
		r := newRedis(t, true)
		r.Start()
		c.Nodes = append(c.Nodes, r)
		addrs = append(addrs, r.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	run(t, cli, args...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, a := range addrs {
			host, port, _ := strings.Cut(a, ":")
			out := run(t, cli, "-h", host, "-p", port, "cluster", "info")
			if !strings.Contains(out, "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("redis cluster did not reach cluster_state:ok")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URL names every node: redis://first?addr=second&addr=third…
func (c *RedisCluster) URL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "redis://%s", c.Nodes[0].Addr())
	for i, n := range c.Nodes[1:] {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString("addr=" + n.Addr())
	}
	return b.String()
}
