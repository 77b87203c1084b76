package codesign

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits on the signed identity.
const (
	MaxIdentifierLen = 255 // bytes of Identity.Identifier
	MaxTeamLen       = 64  // bytes of Identity.Team
)

// Identity is what a signature says its file is: an identifier (such as
// org.example.app) and, optionally, a team (such as ABCDE12345). Both are
// printable ASCII without spaces, and without the characters = " ' ( ) \
// so that they can be written unquoted in a trusted comment and in a
// requirement.
type Identity struct {
	Identifier string
	Team       string // "" for none
}

// errBadIdentity is the cause of every Validate failure.
var errBadIdentity = errors.New("bad identity")

// Validate reports whether id can be signed: a non-empty identifier of at
// most MaxIdentifierLen bytes and a team of at most MaxTeamLen, both of
// the allowed characters.
func (id Identity) Validate() error {
	if err := checkName("identifier", id.Identifier, MaxIdentifierLen); err != nil {
		return err
	}
	if id.Team == "" {
		return nil
	}
	return checkName("team", id.Team, MaxTeamLen)
}

func checkName(what, s string, limit int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", errBadIdentity, what)
	case len(s) > limit:
		return fmt.Errorf("%w: %s longer than %d bytes", errBadIdentity, what, limit)
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return fmt.Errorf("%w: %s has a character not allowed at byte %d", errBadIdentity, what, i)
		}
	}
	return nil
}

// nameByte reports whether c may appear in an identifier or a team.
func nameByte(c byte) bool {
	if c <= ' ' || c > '~' {
		return false
	}
	return !strings.ContainsRune(`="'()\`, rune(c))
}

// String returns id as the trusted comment says it, without a timestamp:
// "identifier=org.example.app team=ABCDE12345".
func (id Identity) String() string { return id.comment(time.Time{}) }

// comment returns the trusted comment for id signed at t (the zero time:
// no timestamp field).
func (id Identity) comment(t time.Time) string {
	s := "identifier=" + id.Identifier
	if id.Team != "" {
		s += " team=" + id.Team
	}
	if !t.IsZero() {
		s += " timestamp=" + strconv.FormatInt(t.Unix(), 10)
	}
	return s
}

// parseComment parses a trusted comment: "identifier=ID", then optionally
// " team=TEAM", then optionally " timestamp=UNIXSECONDS", in that order,
// separated by single spaces, and nothing else. Its errors never quote
// the comment.
func parseComment(s string) (Identity, time.Time, error) {
	var id Identity
	var signed time.Time
	fields := strings.Split(s, " ")
	order := []string{"identifier", "team", "timestamp"}
	for _, f := range fields {
		key, val, ok := strings.Cut(f, "=")
		for len(order) > 0 && order[0] != key {
			order = order[1:]
		}
		if !ok || len(order) == 0 {
			return Identity{}, time.Time{}, errors.New("trusted comment is not identifier=ID [team=TEAM] [timestamp=N]")
		}
		order = order[1:]
		switch key {
		case "identifier":
			id.Identifier = val
		case "team":
			id.Team = val
			if val == "" {
				return Identity{}, time.Time{}, errors.New("trusted comment has an empty team")
			}
		case "timestamp":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 || strconv.FormatInt(n, 10) != val {
				return Identity{}, time.Time{}, errors.New("trusted comment's timestamp is not a number of seconds")
			}
			signed = time.Unix(n, 0)
		}
	}
	if id.Identifier == "" {
		return Identity{}, time.Time{}, errors.New("trusted comment has no identifier")
	}
	if err := id.Validate(); err != nil {
		return Identity{}, time.Time{}, fmt.Errorf("trusted comment: %w", err)
	}
	return id, signed, nil
}
