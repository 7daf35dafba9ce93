package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/jsonobj"
)

// Limits of a request body (contract §8).
const (
	maxBodyBytes     = 1 << 20 // 1 MiB
	maxTextRunes     = 10000
	maxDedupKeyRunes = 255
	maxMetadataBytes = 16 << 10 // 16 KiB of compact JSON
	maxQueryRunes    = 1000
	maxUserIDRunes   = 255
	maxTopK          = 50
	defaultTopK      = 5
)

// invalid builds a 400 whose message the client sees.
func invalid(format string, args ...any) error {
	return contract.Public(fmt.Sprintf(format, args...))
}

// readBody returns the body that server.api has already read (at most
// maxBodyBytes) and checked against the gateway's signature.
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, invalid("Request body could not be read")
	}
	return data, nil
}

// checkLength is the rule of every string a client sends: 1 to maxRunes
// characters.
func checkLength(name, s string, maxRunes int) error {
	if n := utf8.RuneCountInString(s); n < 1 || n > maxRunes {
		return invalid("%s must be 1 to %d characters long, got %d", name, maxRunes, n)
	}
	return nil
}

// checkUserID is the rule of a userId filter, in a search body or a list
// query: 1 to 255 characters and no control character. No key can carry
// one (the gateway refuses them), and PostgreSQL cannot compare a NUL.
func checkUserID(s string) error {
	if err := checkLength("userId", s, maxUserIDRunes); err != nil {
		return err
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid("userId must not contain control characters")
		}
	}
	return nil
}

// stringField reads a required or optional string of 1 to maxRunes
// characters. present is false when the field is absent (or null and not
// required).
func stringField(f jsonobj.Object, name string, required bool, maxRunes int) (value string, present bool, err error) {
	value, present, err = f.String(name, required)
	if err != nil || !present {
		return "", false, err
	}
	if err := checkLength(name, value, maxRunes); err != nil {
		return "", false, err
	}
	return value, true, nil
}

// metadataField reads optional metadata: an object (at most 16 KiB as
// compact JSON) or null (a nil meta). set is false when absent.
func metadataField(f jsonobj.Object) (meta json.RawMessage, set bool, err error) {
	if !f.Has("metadata") {
		return nil, false, nil
	}
	if f.IsNull("metadata") {
		return nil, true, nil
	}
	raw := f["metadata"]
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false, invalid("metadata must be a JSON object or null")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, false, invalid("metadata must be a JSON object or null")
	}
	if buf.Len() > maxMetadataBytes {
		return nil, false, invalid("metadata must be at most %d bytes of JSON, got %d", maxMetadataBytes, buf.Len())
	}
	return json.RawMessage(buf.Bytes()), true, nil
}

type createRequest struct {
	Text     string
	DedupKey string
	Metadata json.RawMessage
}

func parseCreate(data []byte) (createRequest, error) {
	f, err := jsonobj.Parse(data, false, "text", "dedupKey", "metadata")
	if err != nil {
		return createRequest{}, err
	}
	var req createRequest
	if req.Text, _, err = stringField(f, "text", true, maxTextRunes); err != nil {
		return createRequest{}, err
	}
	if req.DedupKey, _, err = stringField(f, "dedupKey", false, maxDedupKeyRunes); err != nil {
		return createRequest{}, err
	}
	if req.Metadata, _, err = metadataField(f); err != nil {
		return createRequest{}, err
	}
	return req, nil
}

// parsePatch reads a PATCH body into the change it asks for, which is
// never the empty patch.
func parsePatch(data []byte) (MemoryPatch, error) {
	f, err := jsonobj.Parse(data, false, "text", "metadata")
	if err != nil {
		return MemoryPatch{}, err
	}
	if f.IsNull("text") {
		return MemoryPatch{}, invalid("text must be a string")
	}
	var patch MemoryPatch
	text, present, err := stringField(f, "text", false, maxTextRunes)
	if err != nil {
		return MemoryPatch{}, err
	}
	if present {
		patch.Text = &text
	}
	meta, set, err := metadataField(f)
	if err != nil {
		return MemoryPatch{}, err
	}
	if set {
		patch.Metadata = &meta
	}
	if patch == (MemoryPatch{}) {
		return MemoryPatch{}, invalid("text or metadata is required")
	}
	return patch, nil
}

type searchRequest struct {
	Query  string
	TopK   int
	UserID string // "" means every user
}

func parseSearch(data []byte) (searchRequest, error) {
	f, err := jsonobj.Parse(data, false, "query", "topK", "userId")
	if err != nil {
		return searchRequest{}, err
	}
	var req searchRequest
	if req.Query, _, err = stringField(f, "query", true, maxQueryRunes); err != nil {
		return searchRequest{}, err
	}
	req.TopK = defaultTopK
	if f.Has("topK") {
		// null is not "the default": it is not an integer.
		topK, err := jsonobj.ParseInt("topK", string(f["topK"]), 1, maxTopK)
		if err != nil {
			return searchRequest{}, err
		}
		req.TopK = int(topK)
	}
	userID, present, err := f.String("userId", false)
	if err != nil {
		return searchRequest{}, err
	}
	if present {
		if err := checkUserID(userID); err != nil {
			return searchRequest{}, err
		}
		req.UserID = userID
	}
	return req, nil
}
