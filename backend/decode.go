package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/azen-sh/gateway/internal/contract"
)

// Limits of the API (contract §8).
const (
	maxBodyBytes     = 1 << 20 // 1 MiB
	maxTextRunes     = 10000
	maxDedupKeyRunes = 255
	maxMetadataBytes = 16 << 10 // 16 KiB of compact JSON
	maxQueryRunes    = 1000
	maxUserIDRunes   = 255
	maxTopK          = 50
	defaultTopK      = 5
	maxPer           = 100
	defaultPer       = 20
	maxPage          = 1<<31 - 1
)

// invalid builds a 400 whose message the client sees.
func invalid(format string, args ...any) error {
	return contract.Public(fmt.Sprintf(format, args...))
}

// quoteName shows a client-sent name in a message, shortened and escaped.
func quoteName(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return strconv.Quote(s)
}

// readBody reads at most 1 MiB of the request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, invalid("Request body must not exceed 1 MiB")
		}
		return nil, invalid("Request body could not be read")
	}
	if !utf8.Valid(data) {
		// The JSON decoder would quietly turn bad bytes into U+FFFD.
		return nil, invalid("Request body is not valid UTF-8")
	}
	return data, nil
}

// checkUserID refuses control characters in a userId filter: no key can
// carry one (the gateway refuses them), and PostgreSQL cannot compare a NUL.
func checkUserID(s string) error {
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid("userId must not contain control characters")
		}
	}
	return nil
}

// parseObject decodes a body that must be exactly one JSON object whose keys
// are all in allowed (case-sensitive, each at most once). Values are
// returned raw, for the typed readers below.
func parseObject(data []byte, allowed ...string) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid("Request body is required: a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, invalid("Request body must be a JSON object")
	}
	fields := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		name, _ := tok.(string) // inside an object the decoder only yields string keys
		known := false
		for _, a := range allowed {
			if a == name {
				known = true
				break
			}
		}
		if !known {
			return nil, invalid("Unknown field %s", quoteName(name))
		}
		if _, dup := fields[name]; dup {
			return nil, invalid("Field %s appears more than once", quoteName(name))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(err)
		}
		if r, bad := loneSurrogate(raw); bad {
			// encoding/json would quietly store U+FFFD in its place.
			return nil, invalid("%s contains an unpaired UTF-16 surrogate (\\u%04x), which is not Unicode text", name, r)
		}
		fields[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("Request body must contain a single JSON object and nothing after it")
	}
	return fields, nil
}

// loneSurrogate finds a \uXXXX escape in JSON text that names half of a
// UTF-16 surrogate pair without its other half ("\ud800x", "\udc00").
// Outside strings valid JSON has no backslash, so a scan of the raw value
// that skips each escaped character is enough.
func loneSurrogate(raw []byte) (rune, bool) {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw[i+1:])
		if !ok {
			continue // the decoder has refused it already
		}
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return r, true
		case r >= 0xd800 && r <= 0xdbff:
			if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if low, ok := hex4(raw[i+3:]); ok && low >= 0xdc00 && low <= 0xdfff {
					i += 6
					continue
				}
			}
			return r, true
		}
	}
	return 0, false
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func malformed(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return invalid("Malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return invalid("Malformed JSON: unexpected end of body")
	}
	return invalid("Malformed JSON: %s", err.Error())
}

// stringField reads a required or optional string of minRunes..maxRunes
// characters. present is false when the field is absent.
func stringField(fields map[string]json.RawMessage, name string, required bool, minRunes, maxRunes int) (value string, present bool, err error) {
	raw, ok := fields[name]
	if !ok || (string(raw) == "null" && !required) {
		if required {
			return "", false, invalid("%s is required", name)
		}
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, invalid("%s must be a string", name)
	}
	if err := json.Unmarshal(raw, &value); err != nil {
		return "", false, invalid("%s must be a string", name)
	}
	n := utf8.RuneCountInString(value)
	if n < minRunes || n > maxRunes {
		return "", false, invalid("%s must be %d to %d characters long, got %d", name, minRunes, maxRunes, n)
	}
	return value, true, nil
}

// intField reads an optional integer in lo..hi; def when absent.
func intField(fields map[string]json.RawMessage, name string, lo, hi, def int64) (int64, error) {
	raw, ok := fields[name]
	if !ok {
		return def, nil
	}
	return parseInt(name, string(raw), lo, hi)
}

func parseInt(name, s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s == "" || s[0] == '+' || (len(s) > 1 && s[0] == '0') {
		return 0, invalid("%s must be an integer from %d to %d", name, lo, hi)
	}
	if n < lo || n > hi {
		return 0, invalid("%s must be from %d to %d, got %d", name, lo, hi, n)
	}
	return n, nil
}

// metadataField reads optional metadata: an object (at most 16 KiB as
// compact JSON) or null. set is false when absent.
func metadataField(fields map[string]json.RawMessage) (meta json.RawMessage, set bool, err error) {
	raw, ok := fields["metadata"]
	if !ok {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return nil, true, nil
	}
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
	f, err := parseObject(data, "text", "dedupKey", "metadata")
	if err != nil {
		return createRequest{}, err
	}
	var req createRequest
	if req.Text, _, err = stringField(f, "text", true, 1, maxTextRunes); err != nil {
		return createRequest{}, err
	}
	if req.DedupKey, _, err = stringField(f, "dedupKey", false, 1, maxDedupKeyRunes); err != nil {
		return createRequest{}, err
	}
	if req.Metadata, _, err = metadataField(f); err != nil {
		return createRequest{}, err
	}
	return req, nil
}

type patchRequest struct {
	Text        *string
	Metadata    json.RawMessage
	SetMetadata bool
}

func parsePatch(data []byte) (patchRequest, error) {
	f, err := parseObject(data, "text", "metadata")
	if err != nil {
		return patchRequest{}, err
	}
	var req patchRequest
	if raw, ok := f["text"]; ok && string(raw) == "null" {
		return patchRequest{}, invalid("text must be a string")
	}
	text, present, err := stringField(f, "text", false, 1, maxTextRunes)
	if err != nil {
		return patchRequest{}, err
	}
	if present {
		req.Text = &text
	}
	if req.Metadata, req.SetMetadata, err = metadataField(f); err != nil {
		return patchRequest{}, err
	}
	if req.Text == nil && !req.SetMetadata {
		return patchRequest{}, invalid("text or metadata is required")
	}
	return req, nil
}

type searchRequest struct {
	Query  string
	TopK   int
	UserID string
}

func parseSearch(data []byte) (searchRequest, error) {
	f, err := parseObject(data, "query", "topK", "userId")
	if err != nil {
		return searchRequest{}, err
	}
	var req searchRequest
	if req.Query, _, err = stringField(f, "query", true, 1, maxQueryRunes); err != nil {
		return searchRequest{}, err
	}
	topK, err := intField(f, "topK", 1, maxTopK, defaultTopK)
	if err != nil {
		return searchRequest{}, err
	}
	req.TopK = int(topK)
	if req.UserID, _, err = stringField(f, "userId", false, 1, maxUserIDRunes); err != nil {
		return searchRequest{}, err
	}
	if err := checkUserID(req.UserID); err != nil {
		return searchRequest{}, err
	}
	return req, nil
}

type listRequest struct {
	Page      int64
	Per       int64
	UserID    string
	Cursor    *Cursor
	UseCursor bool
}

// parseList reads the list query string: page, per, userId, cursor.
func parseList(rawQuery string) (listRequest, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		// "invalid URL escape "%zz"", "invalid semicolon separator in query"
		return listRequest{}, invalid("Malformed query string: %s", err.Error())
	}
	req := listRequest{Page: 1, Per: defaultPer}
	for name, vs := range values {
		switch name {
		case "page", "per", "userId", "cursor":
		default:
			return listRequest{}, invalid("Unknown query parameter %s", quoteName(name))
		}
		if len(vs) > 1 {
			return listRequest{}, invalid("%s must be given at most once", name)
		}
	}
	if v, ok := values["page"]; ok {
		if req.Page, err = parseInt("page", v[0], 1, maxPage); err != nil {
			return listRequest{}, err
		}
	}
	if v, ok := values["per"]; ok {
		if req.Per, err = parseInt("per", v[0], 1, maxPer); err != nil {
			return listRequest{}, err
		}
	}
	if v, ok := values["userId"]; ok {
		if !utf8.ValidString(v[0]) {
			return listRequest{}, invalid("userId must be UTF-8 text: a percent-escape in it (such as %%ff) decodes to bytes that are not UTF-8")
		}
		n := utf8.RuneCountInString(v[0])
		if n < 1 || n > maxUserIDRunes {
			return listRequest{}, invalid("userId must be 1 to %d characters long, got %d", maxUserIDRunes, n)
		}
		if err := checkUserID(v[0]); err != nil {
			return listRequest{}, err
		}
		req.UserID = v[0]
	}
	if v, ok := values["cursor"]; ok {
		if _, withPage := values["page"]; withPage {
			return listRequest{}, invalid("cursor cannot be combined with page")
		}
		req.UseCursor = true
		if v[0] != "" {
			c, ok := decodeCursor(v[0])
			if !ok {
				return listRequest{}, invalid("cursor is not a cursor this API returned")
			}
			req.Cursor = &c
		}
	}
	return req, nil
}

// A cursor is base64url of 8 bytes of creation time (µs) and 16 of id.
func encodeCursor(c Cursor) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.CreatedAt))
	id, _ := parseUUID(c.ID)
	var raw [16]byte
	hexDecodeUUID(id, raw[:])
	copy(b[8:], raw[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (Cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return Cursor{}, false
	}
	at := int64(binary.BigEndian.Uint64(b[:8]))
	if at < 0 {
		return Cursor{}, false
	}
	var raw [16]byte
	copy(raw[:], b[8:])
	return Cursor{CreatedAt: at, ID: formatUUID(raw)}, true
}
