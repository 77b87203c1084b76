package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/spf13/pflag"
)

var decodeCommand = &command{
	name:    "decode",
	args:    "[--json] [FILE]",
	summary: "print a serialized XPC body or RemoteXPC message",
	help: `Reads FILE (standard input if FILE is absent or "-"): either a serialized
body, which starts with the magic "@XPC" (0x40585043) or RemoteXPC's
0x42133742, or a RemoteXPC message, which starts with the wrapper magic
0x29B00B92 and a 24-byte header, and whose body has RemoteXPC's magic.
Prints the value as xpc_copy_description does, after a line describing a
message's header; with --json, prints tagged
JSON instead, a message as {"flags":N,"id":N,"body":VALUE}.

Malformed input prints one line naming the problem and its byte offset and
exits with status 1. A body holding fd, shmem or endpoint objects cannot be
decoded from a file: the descriptors they stand for arrive beside the body
on a connection, and a file has none.`,
	setup: setupDecode,
}

func setupDecode(fs *pflag.FlagSet) runFunc {
	asJSON := fs.Bool("json", false, "print tagged JSON instead of the description")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		if len(pos) > 1 {
			return c.usageError(s, "too many arguments")
		}
		data, name, err := readInput(s, firstOr(pos, ""))
		if err != nil {
			return c.fail(s, "%v", err)
		}
		out, err := decodeOutput(data, *asJSON)
		if err != nil {
			return c.fail(s, "%s: %v", name, err)
		}
		if _, err := s.out.Write(out); err != nil {
			return c.fail(s, "write: %v", err)
		}
		return exitOK
	}
}

func firstOr(args []string, def string) string {
	if len(args) == 0 {
		return def
	}
	return args[0]
}

// decodeOutput decodes data, a body or a wrapped message, and returns what
// decode prints.
func decodeOutput(data []byte, asJSON bool) ([]byte, error) {
	if xpc.IsWrapped(data) {
		m, err := xpc.DecodeWrapped(data)
		if err != nil {
			return nil, explainDecodeError(err)
		}
		if asJSON {
			js, err := xpc.MarshalTaggedJSONMessage(m)
			if err != nil {
				return nil, err
			}
			return indentJSON(js)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "RemoteXPC message id=%d flags=%#x (%s) body=%d bytes\n",
			m.Header.ID, m.Header.Flags, flagNames(m.Header.Flags), m.Header.BodyLen)
		if m.Body != nil {
			b.WriteString(xpc.Format(m.Body))
			b.WriteByte('\n')
		}
		return []byte(b.String()), nil
	}
	var dec xpc.Decoder
	obj, err := dec.Decode(data, nil)
	if err != nil {
		return nil, explainDecodeError(err)
	}
	if asJSON {
		js, err := xpc.MarshalTaggedJSON(obj)
		if err != nil {
			return nil, err
		}
		return indentJSON(js)
	}
	return []byte(xpc.Format(obj) + "\n"), nil
}

// indentJSON lays compact JSON out two spaces to a level, with a final
// newline.
func indentJSON(js []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Indent(&b, js, "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// explainDecodeError adds what a user needs to know to two decode errors
// whose cause is not in the bytes.
func explainDecodeError(err error) error {
	var de *xpc.DecodeError
	switch {
	case errors.Is(err, xpc.ErrAttachments):
		return fmt.Errorf("%w (a file carries no descriptors: fd, shmem and endpoint objects decode only as they arrive on a connection)", err)
	case errors.As(err, &de) && errors.Is(err, xpc.ErrBadMagic) && de.Offset == 0:
		return fmt.Errorf("%w (want a body, magic 0x40585043 or 0x42133742, or a RemoteXPC message, magic 0x29b00b92)", err)
	}
	return err
}

var flagBits = []struct {
	bit  uint32
	name string
}{
	{xpc.FlagAlwaysSet, "always-set"},
	{xpc.FlagDataPresent, "data"},
	{xpc.FlagWantsReply, "wants-reply"},
	{xpc.FlagReply, "reply"},
	{xpc.FlagInitHandshake, "init-handshake"},
}

// flagNames spells a wrapper's flags: "always-set|data|wants-reply", with
// unknown bits in hex.
func flagNames(f uint32) string {
	var names []string
	for _, fb := range flagBits {
		if f&fb.bit != 0 {
			names = append(names, fb.name)
			f &^= fb.bit
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%#x", f))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}
