// Package jsonobj reads a JSON request body that must be one object with
// known fields, and reports the first problem naming the field at fault, as
// the contract's 400s do ("name must be a string", "Unknown field \"x\"").
// Every error it returns is a contract.Public error. The console's API and
// the backend's memory API both decode their bodies with it.
package jsonobj

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/azen-sh/gateway/internal/contract"
)

// Object is a decoded body: field name to its raw value.
type Object map[string]json.RawMessage

func invalid(format string, args ...any) error { return contract.Public(fmt.Sprintf(format, args...)) }

// QuoteName shows a client-sent name in a message, shortened and escaped.
func QuoteName(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return strconv.Quote(s)
}

// Parse decodes data, which must be exactly one JSON object whose keys are
// all in allowed (case-sensitive), each at most once, and whose values hold
// no unpaired UTF-16 surrogate escape. An empty body is an empty object when
// emptyOK.
func Parse(data []byte, emptyOK bool, allowed ...string) (Object, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		if emptyOK {
			return Object{}, nil
		}
		return nil, invalid("Request body is required: a JSON object")
	}
	if !utf8.Valid(data) {
		return nil, invalid("Request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, invalid("Request body must be a JSON object")
	}
	obj := Object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		name, _ := tok.(string)
		if !slices.Contains(allowed, name) {
			return nil, invalid("Unknown field %s", QuoteName(name))
		}
		if _, dup := obj[name]; dup {
			return nil, invalid("Field %s appears more than once", QuoteName(name))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(err)
		}
		if r, bad := loneSurrogate(raw); bad {
			// encoding/json would quietly store U+FFFD in its place.
			return nil, invalid("%s contains an unpaired UTF-16 surrogate (\\u%04x), which is not Unicode text", name, r)
		}
		obj[name] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("Request body must contain a single JSON object and nothing after it")
	}
	return obj, nil
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

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	var v [2]byte
	if len(b) < 4 {
		return 0, false
	}
	if _, err := hex.Decode(v[:], b[:4]); err != nil {
		return 0, false
	}
	return rune(v[0])<<8 | rune(v[1]), true
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

// Has reports whether the field was sent (null included).
func (o Object) Has(name string) bool { _, ok := o[name]; return ok }

// IsNull reports whether the field was sent as null.
func (o Object) IsNull(name string) bool { return string(o[name]) == "null" }

// String reads a string field. present is false when it is absent (or null
// and not required).
func (o Object) String(name string, required bool) (value string, present bool, err error) {
	raw, ok := o[name]
	if !ok || (string(raw) == "null" && !required) {
		if required {
			return "", false, invalid("%s is required", name)
		}
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &value) != nil {
		return "", false, invalid("%s must be a string", name)
	}
	return value, true, nil
}

// Int reads an integer field in lo..hi. present is false when absent or null.
func (o Object) Int(name string, lo, hi int64) (value int64, present bool, err error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	n, err := ParseInt(name, string(raw), lo, hi)
	if err != nil {
		return 0, false, err
	}
	return n, true, nil
}

// ParseInt reads s, a JSON number or a query parameter, as an integer in
// lo..hi: decimal digits with an optional minus sign, no plus sign, no
// leading zero, no fraction or exponent. Its errors name the field.
func ParseInt(name, s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s[0] == '+' || (len(s) > 1 && s[0] == '0') {
		return 0, invalid("%s must be an integer from %d to %d", name, lo, hi)
	}
	if n < lo || n > hi {
		return 0, invalid("%s must be from %d to %d, got %d", name, lo, hi, n)
	}
	return n, nil
}

// Strings reads an array of strings. present is false when absent or null.
func (o Object) Strings(name string) (value []string, present bool, err error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &value) != nil {
		return nil, false, invalid("%s must be an array of strings", name)
	}
	if value == nil {
		value = []string{}
	}
	return value, true, nil
}

// Object reads a nested object with known fields. present is false when
// absent or null.
func (o Object) Object(name string, allowed ...string) (value Object, present bool, err error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false, invalid("%s must be an object", name)
	}
	inner, err := Parse(raw, false, allowed...)
	if err != nil {
		msg, _ := contract.PublicMessage(err)
		return nil, false, invalid("%s: %s", name, msg)
	}
	return inner, true, nil
}
