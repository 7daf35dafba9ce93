package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func searchIDs(t *testing.T, s *Store, org, user, query string, k int) []string {
	t.Helper()
	ms, err := s.Search(context.Background(), org, user, query, k)
	if err != nil {
		t.Fatalf("search %q: %v", query, err)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Memory.ID
		if i > 0 && ms[i].Score > ms[i-1].Score {
			t.Errorf("results not best first: %v", ms)
		}
	}
	return ids
}

// searchRules are the ranking rules; TestStore runs them on each database.
func searchRules(t *testing.T, newDB func(t *testing.T) string, key string) {
	ctx := context.Background()
	t.Run("search ranks by BM25, folds case and scopes to org and user", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, key))
		best := create(t, s, orgA, "u1", "Kubernetes kubernetes KUBERNETES cluster")
		mid := create(t, s, orgA, "u2", "a kubernetes cluster with many other words in it to make it long")
		create(t, s, orgA, "u1", "nothing relevant here")
		create(t, s, orgB, "u1", "kubernetes kubernetes")
		for range 5 {
			create(t, s, orgA, "u3", "cluster cluster")
		}
		ids := searchIDs(t, s, orgA, "", "kubernetes", 10)
		if len(ids) != 2 || ids[0] != best || ids[1] != mid {
			t.Errorf("ranking %v, want [%s %s]", ids, best, mid)
		}
		if ids := searchIDs(t, s, orgA, "u2", "Kubernetes", 10); len(ids) != 1 || ids[0] != mid {
			t.Errorf("userId scope: %v", ids)
		}
		if ids := searchIDs(t, s, orgA, "", "kubernetes cluster", 1); len(ids) != 1 || ids[0] != best {
			t.Errorf("topK 1: %v", ids)
		}
		if ids := searchIDs(t, s, orgA, "", "cluster", 10); len(ids) != 7 {
			t.Errorf("a query of only a common term: %d results, want 7", len(ids))
		}
		if ids := searchIDs(t, s, orgA, "", "?!", 5); len(ids) != 0 {
			t.Errorf("query without terms: %v", ids)
		}
	})

	t.Run("memories created right after a search are found with positive scores", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, key))
		create(t, s, orgA, "u", "a heron")
		searchIDs(t, s, orgA, "", "heron", 5) // the corpus figures are now cached
		create(t, s, orgA, "u", "a pelican")
		create(t, s, orgA, "u", "another pelican")
		ms, err := s.Search(ctx, orgA, "", "pelican", 5)
		if err != nil || len(ms) != 2 {
			t.Fatalf("fresh memories: %d %v", len(ms), err)
		}
		for _, m := range ms {
			if !(m.Score > 0) {
				t.Errorf("score %v", m.Score)
			}
		}
	})

}

func TestStatsCacheKeepsFiguresForTheTTLAndStaysBounded(t *testing.T) {
	var c statsCache
	t0 := time.Unix(1_700_000_000, 0)
	if _, ok := c.get("org", t0); ok {
		t.Fatal("the zero cache has an entry")
	}
	c.put("org", corpusStats{N: 3, Total: 12, at: t0})
	if st, ok := c.get("org", t0.Add(statsTTL-time.Millisecond)); !ok || st.N != 3 || st.Total != 12 {
		t.Errorf("within the TTL: %+v %v", st, ok)
	}
	if _, ok := c.get("org", t0.Add(statsTTL)); ok {
		t.Error("a figure older than the TTL is used")
	}
	for i := range maxCachedStats - 1 {
		c.put(fmt.Sprint("scope ", i), corpusStats{at: t0})
	}
	if len(c.byScope) != maxCachedStats {
		t.Fatalf("%d scopes cached, want %d", len(c.byScope), maxCachedStats)
	}
	c.put("one more", corpusStats{at: t0})
	if _, ok := c.get("org", t0); ok || len(c.byScope) != 1 {
		t.Errorf("a full cache was not emptied: %d scopes", len(c.byScope))
	}
}
