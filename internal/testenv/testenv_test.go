package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/redisconn"
)

func TestRedisStopAndRestart(t *testing.T) {
	r := StartRedis(t)
	o, err := redisconn.Parse(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := o.NewClient()
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("a stopped Redis answered")
	}
	r.Start()
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("after restart: %v (want an empty server)", err)
	}
}

func TestRedisCluster(t *testing.T) {
	c := StartRedisCluster(t, 3)
	o, err := redisconn.Parse(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if !o.IsCluster() {
		t.Fatalf("%s not parsed as a cluster", c.URL())
	}
	client := o.NewClient()
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := client.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
}
