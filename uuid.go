package xpc

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// UUID is an XPC uuid: 16 bytes, written in the 8-4-4-4-12 hex form.
type UUID [16]byte

// ErrBadUUID is returned by ParseUUID for text that is not 8-4-4-4-12 hex.
var ErrBadUUID = errors.New("malformed uuid")

// ParseUUID parses the 8-4-4-4-12 hex form (either case).
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("xpc: %w: %q", ErrBadUUID, s)
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		if _, err := hex.Decode(u[j:j+1], []byte(s[i:i+2])); err != nil {
			return UUID{}, fmt.Errorf("xpc: %w: %q", ErrBadUUID, s)
		}
		i += 2
		j++
	}
	return u, nil
}

// String returns the upper-case 8-4-4-4-12 form, as Apple's tools print it.
func (u UUID) String() string {
	const digits = "0123456789ABCDEF"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = digits[c>>4], digits[c&0xF]
		j += 2
	}
	return string(b[:])
}

// MarshalText implements encoding.TextMarshaler.
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *UUID) UnmarshalText(b []byte) error {
	v, err := ParseUUID(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}
