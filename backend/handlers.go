package main

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/jsonobj"
)

// memoryJSON is the wire form of a memory (contract §8).
type memoryJSON struct {
	ID        string          `json:"id"`
	Content   string          `json:"content"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt string          `json:"createdAt"`
	UpdatedAt string          `json:"updatedAt"`
	Embedded  bool            `json:"embedded"`
	UserID    string          `json:"userId"`
}

// timeJSON formats like JavaScript's Date.toISOString, which the original
// service produced: UTC with milliseconds.
func timeJSON(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func toJSON(m Memory) memoryJSON {
	meta := m.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("null")
	}
	return memoryJSON{
		ID: m.ID, Content: m.Content, Metadata: meta,
		CreatedAt: timeJSON(m.CreatedAt), UpdatedAt: timeJSON(m.UpdatedAt),
		Embedded: true, UserID: m.UserID,
	}
}

// pathID reads the {id} path segment, which must be a UUID (either case;
// the store's ids are lower case).
func pathID(r *http.Request) (string, error) {
	raw := r.PathValue("id")
	id, ok := ids.Parse(raw)
	if !ok {
		return "", invalid("id must be a UUID, got %s", jsonobj.QuoteName(raw))
	}
	return id, nil
}

func (s *server) handleCreate(w http.ResponseWriter, r *http.Request, id contract.Identity) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	req, err := parseCreate(data)
	if err != nil {
		return err
	}
	c, err := s.store.Create(r.Context(), NewMemory{
		OrgID: id.OrganizationID, UserID: id.UserID,
		Text: req.Text, DedupKey: req.DedupKey, Metadata: req.Metadata,
	})
	if err != nil {
		return err
	}
	if c.Duplicated {
		writeJSON(w, http.StatusOK, struct {
			Status     string `json:"status"`
			MemoryID   string `json:"memoryId"`
			Duplicated bool   `json:"duplicated"`
			Message    string `json:"message"`
		}{"success", c.ID, true, "A memory with this dedupKey already exists; nothing was stored."})
		return nil
	}
	writeJSON(w, http.StatusCreated, struct {
		Status          string `json:"status"`
		MemoryID        string `json:"memoryId"`
		CreatedAt       string `json:"createdAt"`
		Embedding       string `json:"embedding"`
		EmbeddingStatus string `json:"embeddingStatus"`
	}{"success", c.ID, timeJSON(c.CreatedAt), "completed", "completed"})
	return nil
}

type memoryResponse struct {
	Status string     `json:"status"`
	Memory memoryJSON `json:"memory"`
}

func (s *server) handleGet(w http.ResponseWriter, r *http.Request, id contract.Identity) error {
	memID, err := pathID(r)
	if err != nil {
		return err
	}
	m, err := s.store.Get(r.Context(), id.OrganizationID, memID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, memoryResponse{"success", toJSON(m)})
	return nil
}

func (s *server) handleList(w http.ResponseWriter, r *http.Request, id contract.Identity) error {
	req, err := parseList(r.URL.RawQuery)
	if err != nil {
		return err
	}
	res, err := s.store.List(r.Context(), ListQuery{OrgID: id.OrganizationID, UserID: req.UserID, Page: req.Page, Per: req.Per, Cursor: req.Cursor})
	if err != nil {
		return err
	}
	memories := make([]memoryJSON, len(res.Memories))
	for i, m := range res.Memories {
		memories[i] = toJSON(m)
	}
	var page *int64 // null in keyset mode
	if req.Cursor == nil {
		page = &req.Page
	}
	var next *string
	if res.Next != nil {
		c := encodeCursor(*res.Next)
		next = &c
	}
	writeJSON(w, http.StatusOK, struct {
		Status     string       `json:"status"`
		Memories   []memoryJSON `json:"memories"`
		Page       *int64       `json:"page"`
		Per        int64        `json:"per"`
		TotalPages int64        `json:"total_pages"`
		TotalCount int64        `json:"total_count"`
		NextCursor *string      `json:"nextCursor"`
	}{"success", memories, page, req.Per, (res.TotalCount + req.Per - 1) / req.Per, res.TotalCount, next})
	return nil
}

func (s *server) handlePatch(w http.ResponseWriter, r *http.Request, id contract.Identity) error {
	memID, err := pathID(r)
	if err != nil {
		return err
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	patch, err := parsePatch(data)
	if err != nil {
		return err
	}
	m, err := s.store.Update(r.Context(), id.OrganizationID, memID, patch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, memoryResponse{"success", toJSON(m)})
	return nil
}

func (s *server) handleDelete(w http.ResponseWriter, r *http.Request, id contract.Identity) error {
	memID, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.store.Delete(r.Context(), id.OrganizationID, memID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Status   string `json:"status"`
		Deleted  bool   `json:"deleted"`
		MemoryID string `json:"memoryId"`
		Message  string `json:"message"`
	}{"success", true, memID, "Memory deleted."})
	return nil
}

// rawMatch is one item of a search's rawMatches. The published SDK types
// declare `values` (the original service's embedding vector); this service
// has no vectors, so it is always an empty array, never absent or null.
type rawMatch struct {
	ID     string    `json:"id"`
	Score  float64   `json:"score"`
	Values []float64 `json:"values"`
}

func (s *server) handleSearch(w http.ResponseWriter, r *http.Request, id contract.Identity) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	req, err := parseSearch(data)
	if err != nil {
		return err
	}
	matches, err := s.store.Search(r.Context(), id.OrganizationID, req.UserID, req.Query, req.TopK)
	if err != nil {
		return err
	}
	memories := make([]memoryJSON, len(matches))
	raw := make([]rawMatch, len(matches))
	for i, m := range matches {
		memories[i] = toJSON(m.Memory)
		raw[i] = rawMatch{ID: m.Memory.ID, Score: m.Score, Values: []float64{}}
	}
	writeJSON(w, http.StatusOK, struct {
		Status     string       `json:"status"`
		Memories   []memoryJSON `json:"memories"`
		RawMatches []rawMatch   `json:"rawMatches"`
	}{"success", memories, raw})
	return nil
}
