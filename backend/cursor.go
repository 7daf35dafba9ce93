package main

import (
	"encoding/base64"
	"encoding/binary"
	"math"

	"github.com/azen-sh/gateway/internal/ids"
)

// Cursor is a keyset position: the memory after which the next page starts.
type Cursor struct {
	CreatedAt int64 // microseconds
	ID        string
}

// startCursor stands before the newest memory: an empty ?cursor= starts
// keyset paging there.
var startCursor = Cursor{CreatedAt: math.MaxInt64, ID: "00000000-0000-0000-0000-000000000000"}

// encodeCursor is the nextCursor the API returns: base64url (unpadded) of
// 8 bytes of creation time (µs, big-endian) and the 16 bytes of the id.
func encodeCursor(c Cursor) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.CreatedAt))
	id, _ := ids.Bytes(c.ID)
	copy(b[8:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeCursor reads what encodeCursor wrote; false for anything else.
func decodeCursor(s string) (Cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return Cursor{}, false
	}
	at := int64(binary.BigEndian.Uint64(b[:8]))
	if at < 0 {
		return Cursor{}, false
	}
	return Cursor{CreatedAt: at, ID: ids.FromBytes([16]byte(b[8:]))}, true
}
