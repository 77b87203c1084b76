package uevent

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/goxpc/xpc"
)

// Bounds on a message.
const (
	// MaxMessage is the largest message read, in bytes; a longer one is
	// dropped. The kernel's are at most 2048 bytes (UEVENT_BUFFER_SIZE).
	MaxMessage = 8192
	// MaxProps is the most properties one event may carry (the kernel's
	// UEVENT_NUM_ENVP is 64).
	MaxProps = 128
)

// ErrMalformed is the error of a message that is not a kernel uevent.
var ErrMalformed = errors.New("malformed uevent")

// Event is one kernel uevent.
type Event struct {
	Action    string // "add", "remove", "change", "bind", ...
	DevPath   string // under /sys, as "/devices/virtual/mem/null"
	Subsystem string
	Seq       uint64            // SEQNUM
	Props     map[string]string // every KEY=VALUE, these included
}

// libudevMagic begins udev's own (binary) messages.
var libudevMagic = []byte("libudev\x00")

// Parse reads one message "ACTION@DEVPATH\0KEY=VALUE\0...".
func Parse(b []byte) (*Event, error) {
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxMessage)
	}
	if bytes.HasPrefix(b, libudevMagic) {
		return nil, fmt.Errorf("%w: a udev message, not the kernel's", ErrMalformed)
	}
	head, rest, _ := bytes.Cut(b, []byte{0})
	action, devpath, ok := strings.Cut(string(head), "@")
	if !ok || action == "" || devpath == "" {
		return nil, fmt.Errorf("%w: no ACTION@DEVPATH header", ErrMalformed)
	}
	ev := &Event{Action: action, DevPath: devpath, Props: map[string]string{}}
	for len(rest) > 0 {
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte{0})
		if len(field) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(field), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: property %q is not KEY=VALUE", ErrMalformed, field)
		}
		if len(ev.Props) >= MaxProps {
			return nil, fmt.Errorf("%w: more than %d properties", ErrMalformed, MaxProps)
		}
		ev.Props[k] = v
	}
	// The properties are the kernel's word; the header must agree.
	if a, ok := ev.Props["ACTION"]; !ok || a != action {
		return nil, fmt.Errorf("%w: ACTION %q does not match the header's %q", ErrMalformed, a, action)
	}
	if p, ok := ev.Props["DEVPATH"]; ok && p != devpath {
		return nil, fmt.Errorf("%w: DEVPATH %q does not match the header's %q", ErrMalformed, p, devpath)
	}
	ev.Props["DEVPATH"] = devpath
	ev.Subsystem = ev.Props["SUBSYSTEM"]
	if s, ok := ev.Props["SEQNUM"]; ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: SEQNUM %q", ErrMalformed, s)
		}
		ev.Seq = n
	}
	return ev, nil
}

// Dictionary returns the event's properties as a dictionary of strings,
// the payload of a launch event.
func (ev *Event) Dictionary() *xpc.Dictionary {
	d := xpc.NewDictionary(len(ev.Props))
	for k, v := range ev.Props {
		d.Set(k, xpc.String(v))
	}
	return d
}

// Matcher is a compiled descriptor.
type Matcher struct {
	terms []term
}

type term struct {
	key, value string
	pattern    bool // value has pattern characters: path.Match
}

// Compile reads a descriptor: property name -> string. A value that is not
// a string, or a malformed pattern, is an error (launchd rejects both at
// load). An empty descriptor is an error too: it would match everything.
func Compile(desc *xpc.Dictionary) (Matcher, error) {
	var m Matcher
	if desc == nil || desc.Len() == 0 {
		return m, fmt.Errorf("%w: an empty descriptor", ErrBadDescriptor)
	}
	for k, v := range desc.All() {
		s, ok := v.(xpc.String)
		if !ok {
			return Matcher{}, fmt.Errorf("%w: %s is not a string", ErrBadDescriptor, k)
		}
		t := term{key: k, value: string(s), pattern: strings.ContainsAny(string(s), `*?[\`)}
		if t.pattern {
			if _, err := path.Match(t.value, ""); err != nil {
				return Matcher{}, fmt.Errorf("%w: %s: %w", ErrBadDescriptor, k, err)
			}
		}
		m.terms = append(m.terms, t)
	}
	return m, nil
}

// ErrBadDescriptor is the error of a descriptor Compile cannot read.
var ErrBadDescriptor = errors.New("bad uevent descriptor")

// Match reports whether ev has every property m names, each equal to its
// value or matching its pattern.
func (m Matcher) Match(ev *Event) bool {
	if len(m.terms) == 0 {
		return false
	}
	for _, t := range m.terms {
		v, ok := ev.Props[t.key]
		if !ok {
			return false
		}
		if !t.pattern {
			if v != t.value {
				return false
			}
			continue
		}
		if ok, _ := path.Match(t.value, v); !ok {
			return false
		}
	}
	return true
}

// Match compiles desc and matches ev against it; false for a descriptor
// Compile rejects.
func Match(desc *xpc.Dictionary, ev *Event) bool {
	m, err := Compile(desc)
	return err == nil && m.Match(ev)
}
