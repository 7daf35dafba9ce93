package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
)

const (
	orgA = "11111111-1111-4111-8111-111111111111"
	orgB = "22222222-2222-4222-8222-222222222222"
)

// mustKeys parses an AZEN_ENCRYPTION_KEYS value or fails the test.
func mustKeys(t testing.TB, raw ...string) []encryptionKey {
	t.Helper()
	keys, err := parseEncryptionKeys(strings.Join(raw, ","))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// mustOpenStore opens and migrates url with keys; closed at cleanup.
func mustOpenStore(t testing.TB, url string, keys []encryptionKey) *Store {
	t.Helper()
	db, err := sqldb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kr, err := newKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(db, kr)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func sqliteURL(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "azen.db")
}

// TestStore runs every store rule on SQLite and on one shared PostgreSQL
// server (a fresh database per rule).
func TestStore(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { storeRules(t, sqliteURL) })
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.StartPostgres(t)
		storeRules(t, func(t *testing.T) string { return pg.CreateDatabase(t) })
	})
}

func create(t *testing.T, s *Store, org, user, text string) string {
	t.Helper()
	c, err := s.Create(context.Background(), NewMemory{OrgID: org, UserID: user, Text: text})
	if err != nil || c.Duplicated {
		t.Fatalf("create: %v (%+v)", err, c)
	}
	return c.ID
}

func storeRules(t *testing.T, newDB func(t *testing.T) string) {
	ctx := context.Background()
	keyA := testenv.EncryptionKeys("a")
	keyB := testenv.EncryptionKeys("b")

	t.Run("create then get returns content, metadata and user", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		c, err := s.Create(ctx, NewMemory{OrgID: orgA, UserID: "u1", Text: "Ünïcode text ✓", Metadata: json.RawMessage(`{"k":[1,2]}`)})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Get(ctx, orgA, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Content != "Ünïcode text ✓" || string(m.Metadata) != `{"k":[1,2]}` || m.UserID != "u1" || m.ID != c.ID ||
			!m.CreatedAt.Equal(c.CreatedAt) || c.Duplicated {
			t.Errorf("got %+v from %+v", m, c)
		}
	})

	t.Run("another organization's memory is not found", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		id := create(t, s, orgA, "u1", "secret plan")
		if _, err := s.Get(ctx, orgB, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("get from org B: %v", err)
		}
		if err := s.Delete(ctx, orgB, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete from org B: %v", err)
		}
		text := "x"
		if _, err := s.Update(ctx, orgB, id, MemoryPatch{Text: &text}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update from org B: %v", err)
		}
		if ids := searchIDs(t, s, orgB, "", "secret plan", 5); len(ids) != 0 {
			t.Errorf("org B search found %v", ids)
		}
	})

	t.Run("dedupKey is unique per organization, also under concurrency", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		var wg sync.WaitGroup
		results := make([]Created, 8)
		errs := make([]error, 8)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = s.Create(ctx, NewMemory{OrgID: orgA, UserID: "u", Text: fmt.Sprint("try ", i), DedupKey: "doc-1"})
			}()
		}
		wg.Wait()
		created := 0
		for i, c := range results {
			if errs[i] != nil {
				t.Fatalf("create %d: %v", i, errs[i])
			}
			if !c.Duplicated {
				created++
			} else if !c.CreatedAt.IsZero() {
				t.Errorf("a duplicate has a creation time: %+v", c)
			}
			if c.ID != results[0].ID {
				t.Errorf("ids differ: %+v", results)
			}
		}
		if created != 1 {
			t.Errorf("%d creates stored a memory, want 1", created)
		}
		other, err := s.Create(ctx, NewMemory{OrgID: orgB, UserID: "u", Text: "t", DedupKey: "doc-1"})
		if err != nil || other.Duplicated || other.ID == results[0].ID {
			t.Errorf("org B with the same dedupKey: %+v err %v", other, err)
		}
	})

	t.Run("list pages newest first with totals, cursor visits every memory once, userId filters", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		var want []string
		for i := range 23 {
			user := "u1"
			if i%3 == 0 {
				user = "u2"
			}
			want = append([]string{create(t, s, orgA, user, fmt.Sprint("memory ", i))}, want...)
		}
		create(t, s, orgB, "u1", "other org")
		var got []string
		for page := int64(1); page <= 3; page++ {
			res, err := s.List(ctx, ListQuery{OrgID: orgA, Page: page, Per: 10})
			if err != nil {
				t.Fatal(err)
			}
			if res.TotalCount != 23 {
				t.Errorf("total %d", res.TotalCount)
			}
			if (res.Next == nil) != (page == 3) {
				t.Errorf("page %d next %v", page, res.Next)
			}
			for _, m := range res.Memories {
				got = append(got, m.ID)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("page order\n got %v\nwant %v", got, want)
		}
		got = nil
		start := startCursor
		cur := &start
		for cur != nil {
			res, err := s.List(ctx, ListQuery{OrgID: orgA, Per: 7, Cursor: cur})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range res.Memories {
				got = append(got, m.ID)
			}
			cur = res.Next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("cursor order\n got %v\nwant %v", got, want)
		}
		res, err := s.List(ctx, ListQuery{OrgID: orgA, UserID: "u2", Page: 1, Per: 100})
		if err != nil || res.TotalCount != 8 || len(res.Memories) != 8 {
			t.Errorf("userId filter: %d/%d %v", res.TotalCount, len(res.Memories), err)
		}
	})

	t.Run("update and delete show in search at once", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		id := create(t, s, orgA, "u", "the zebra runs")
		if ids := searchIDs(t, s, orgA, "", "zebra", 5); len(ids) != 1 || ids[0] != id {
			t.Fatalf("before update: %v", ids)
		}
		text := "the giraffe walks"
		meta := json.RawMessage(`{"a":1}`)
		m, err := s.Update(ctx, orgA, id, MemoryPatch{Text: &text, Metadata: &meta})
		if err != nil || m.Content != text || string(m.Metadata) != `{"a":1}` {
			t.Fatalf("update: %+v %v", m, err)
		}
		if ids := searchIDs(t, s, orgA, "", "zebra", 5); len(ids) != 0 {
			t.Errorf("old word still found: %v", ids)
		}
		if ids := searchIDs(t, s, orgA, "", "GIRAFFE", 5); len(ids) != 1 {
			t.Errorf("new word not found: %v", ids)
		}
		var none json.RawMessage
		m, err = s.Update(ctx, orgA, id, MemoryPatch{Metadata: &none})
		if err != nil || m.Metadata != nil || m.Content != text {
			t.Errorf("clear metadata: %+v %v", m, err)
		}
		if err := s.Delete(ctx, orgA, id); err != nil {
			t.Fatal(err)
		}
		if ids := searchIDs(t, s, orgA, "", "giraffe", 5); len(ids) != 0 {
			t.Errorf("deleted memory found: %v", ids)
		}
		if err := s.Delete(ctx, orgA, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})

	t.Run("a patch changes only what it names; metadata pointing at nil or null clears it", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		c, err := s.Create(ctx, NewMemory{OrgID: orgA, UserID: "u", Text: "the okapi", Metadata: json.RawMessage(`{"a":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Update(ctx, orgA, c.ID, MemoryPatch{})
		if err != nil || m.Content != "the okapi" || string(m.Metadata) != `{"a":1}` || !m.UpdatedAt.Equal(c.CreatedAt) {
			t.Errorf("the zero patch changed something: %+v %v", m, err)
		}
		if _, err := s.Update(ctx, orgB, c.ID, MemoryPatch{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("the zero patch from org B: %v", err)
		}
		text := "the tapir"
		if m, err = s.Update(ctx, orgA, c.ID, MemoryPatch{Text: &text}); err != nil || m.Content != text || string(m.Metadata) != `{"a":1}` {
			t.Errorf("a text patch: %+v %v", m, err)
		}
		meta := json.RawMessage(`{"b":2}`)
		for _, cleared := range []json.RawMessage{nil, json.RawMessage(`null`)} {
			if m, err = s.Update(ctx, orgA, c.ID, MemoryPatch{Metadata: &meta}); err != nil || m.Content != text || string(m.Metadata) != `{"b":2}` {
				t.Errorf("a metadata patch: %+v %v", m, err)
			}
			if m, err = s.Update(ctx, orgA, c.ID, MemoryPatch{Metadata: &cleared}); err != nil || m.Metadata != nil || m.Content != text {
				t.Errorf("clear metadata with %q: %+v %v", cleared, m, err)
			}
			if got, err := s.Get(ctx, orgA, c.ID); err != nil || got.Metadata != nil {
				t.Errorf("metadata cleared with %q reads back as %q %v", cleared, got.Metadata, err)
			}
		}
	})

	searchRules(t, newDB, keyA)

	t.Run("a row moved to another organization fails to decrypt", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		id := create(t, s, orgA, "u", "bound to org A")
		if _, err := s.db.Exec(s.db.Rebind(`UPDATE memories SET organization_id = ? WHERE id = ?`), orgB, id); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, orgB, id); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("moved row: %v, want a decryption error", err)
		}
	})

	t.Run("rotate-keys re-seals every row to the first key; search and dedup keep working", func(t *testing.T) {
		url := newDB(t)
		old := mustOpenStore(t, url, mustKeys(t, keyA))
		var ids []string
		for i := range 7 {
			c, err := old.Create(ctx, NewMemory{OrgID: orgA, UserID: "u", Text: fmt.Sprint("rotation word", i, " shared"), DedupKey: fmt.Sprint("d", i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.ID)
		}
		both := mustOpenStore(t, url, mustKeys(t, keyB, keyA))
		// Before rotation, rows under the old key are found and deduplicated.
		if got := searchIDs(t, both, orgA, "", "shared", 10); len(got) != 7 {
			t.Errorf("mixed keys search: %d results", len(got))
		}
		if c, err := both.Create(ctx, NewMemory{OrgID: orgA, UserID: "u", Text: "x", DedupKey: "d3"}); err != nil || !c.Duplicated || c.ID != ids[3] {
			t.Errorf("dedup across keys: %+v err %v", c, err)
		}
		n, err := both.Rotate(ctx, 3, nil)
		if err != nil || n != 7 {
			t.Fatalf("rotate: %d %v", n, err)
		}
		var left int
		if err := both.db.Get(&left, both.db.Rebind(`SELECT COUNT(*) FROM memories WHERE key_id <> ?`), "b"); err != nil || left != 0 {
			t.Errorf("rows not on key b: %d %v", left, err)
		}
		onlyNew := mustOpenStore(t, url, mustKeys(t, keyB))
		for _, id := range ids {
			if _, err := onlyNew.Get(ctx, orgA, id); err != nil {
				t.Errorf("get after rotation: %v", err)
			}
		}
		if got := searchIDs(t, onlyNew, orgA, "", "word3", 10); len(got) != 1 || got[0] != ids[3] {
			t.Errorf("search after rotation: %v", got)
		}
		if c, err := onlyNew.Create(ctx, NewMemory{OrgID: orgA, UserID: "u", Text: "x", DedupKey: "d5"}); err != nil || !c.Duplicated || c.ID != ids[5] {
			t.Errorf("dedup after rotation: %+v %v", c, err)
		}
		if n, err := onlyNew.Rotate(ctx, 3, nil); err != nil || n != 0 {
			t.Errorf("second rotation: %d %v", n, err)
		}
		if _, err := old.Get(ctx, orgA, ids[0]); err == nil || !errors.Is(err, errUnknownKey) {
			t.Errorf("old-key-only store reading a rotated row: %v", err)
		}
	})

	t.Run("no column of any table holds a word of a memory", func(t *testing.T) {
		s := mustOpenStore(t, newDB(t), mustKeys(t, keyA))
		words := []string{"Photosynthesis", "chlorophyll", "Mitochondria", "serendipity", "quokka"}
		if _, err := s.Create(ctx, NewMemory{OrgID: orgA, UserID: "u", Text: words[0] + " and " + words[1],
			DedupKey: words[4], Metadata: json.RawMessage(`{"topic":"` + words[2] + `","` + words[3] + `":true}`)}); err != nil {
			t.Fatal(err)
		}
		dump := dumpAllColumns(t, s)
		for _, w := range words {
			if strings.Contains(strings.ToLower(dump), strings.ToLower(w)) {
				t.Errorf("%q appears in the database", w)
			}
		}
	})
}

// dumpAllColumns reads every column of every row of the backend's tables as
// text and bytes, concatenated.
func dumpAllColumns(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"memories", "memory_terms"} {
		rows, err := s.db.Queryx(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.SliceScan()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					b.Write(v)
				default:
					fmt.Fprint(&b, v)
				}
				b.WriteByte('|')
			}
		}
		rows.Close()
	}
	return b.String()
}
