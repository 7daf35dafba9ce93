package main

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// newUUIDv7 returns a time-ordered random UUID (RFC 9562 version 7), so new
// rows land at the end of the primary-key index.
func newUUIDv7() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	ms := uint64(time.Now().UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// parseUUID accepts the canonical 8-4-4-4-12 hex form (either case) and
// returns it in lower case.
func parseUUID(s string) (string, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", false
	}
	var b [16]byte
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		if _, err := hex.Decode(b[j:j+1], []byte(s[i:i+2])); err != nil {
			return "", false
		}
		j++
	}
	return formatUUID(b), true
}

// hexDecodeUUID writes the 16 bytes of a canonical UUID into dst.
func hexDecodeUUID(id string, dst []byte) {
	j := 0
	for i := 0; i+1 < len(id) && j < 16; {
		if id[i] == '-' {
			i++
			continue
		}
		_, _ = hex.Decode(dst[j:j+1], []byte(id[i:i+2]))
		j++
		i += 2
	}
}
