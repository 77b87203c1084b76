package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/goxpc/xpc"
)

var encodeCommand = &command{
	name:    "encode",
	args:    "[--magic local|remote] [--wrap [--flags N] [--id N]] [FILE]",
	summary: "serialize tagged JSON as an XPC body or RemoteXPC message",
	help: `Reads one value in tagged JSON (the form 'xpcctl decode --json' prints) from
FILE, or standard input if FILE is absent or "-", and writes its serialized
body to standard output. Dictionary keys are written in the JSON's order.

With --wrap, writes a RemoteXPC message instead: a 24-byte header, then the
body with the RemoteXPC magic. The input may then also be a whole message,
{"flags":N,"id":N,"body":VALUE}; --flags and --id override its header. For a
bare value the header defaults to flags 0x101 (always-set|data) and id 0.
N is decimal or 0x-prefixed hex.`,
	run: runEncode,
}

func runEncode(ctx context.Context, s stdio, c *command, args []string) int {
	fs := c.flagSet(s)
	magic := fs.String("magic", "", "body magic `kind`: local (\"@XPC\", the default) or remote (RemoteXPC)")
	wrap := fs.Bool("wrap", false, "write a RemoteXPC message (implies --magic remote)")
	flagsArg := fs.String("flags", "", "with --wrap: the header's flags `N`")
	idArg := fs.String("id", "", "with --wrap: the header's message id `N`")
	pos, code, ok := c.parse(s, fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return c.usageError(s, "too many arguments")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var bodyMagic uint32
	switch *magic {
	case "", "local":
		bodyMagic = xpc.MagicLocal
	case "remote":
		bodyMagic = xpc.MagicRemote
	default:
		return c.usageError(s, fmt.Sprintf("--magic %q: want local or remote", *magic))
	}
	if *wrap && *magic == "local" {
		return c.usageError(s, "--wrap writes a RemoteXPC message, whose body has the remote magic: drop --magic local")
	}
	if !*wrap && (set["flags"] || set["id"]) {
		return c.usageError(s, "--flags and --id need --wrap")
	}
	var flags, id uint64
	var err error
	if set["flags"] {
		if flags, err = parseNumber(*flagsArg, 32); err != nil {
			return c.usageError(s, "--flags: "+err.Error())
		}
	}
	if set["id"] {
		if id, err = parseNumber(*idArg, 64); err != nil {
			return c.usageError(s, "--id: "+err.Error())
		}
	}

	data, name, err := readInput(s, firstOr(pos, ""))
	if err != nil {
		return c.fail(s, "%v", err)
	}
	var out []byte
	if *wrap {
		m, err := readMessage(data)
		if err != nil {
			return c.fail(s, "%s: %v", name, err)
		}
		if set["flags"] {
			m.Header.Flags = uint32(flags)
		}
		if set["id"] {
			m.Header.ID = id
		}
		if out, err = xpc.EncodeWrapped(m); err != nil {
			return c.fail(s, "%s: %v", name, err)
		}
	} else {
		if isMessageJSON(data) {
			return c.fail(s, "%s: input is a whole message {\"flags\",\"id\",\"body\"}: use --wrap", name)
		}
		obj, err := xpc.UnmarshalTaggedJSON(data)
		if err != nil {
			return c.fail(s, "%s: %v", name, err)
		}
		// Tagged JSON cannot hold out-of-band objects, so there are none.
		if out, _, err = xpc.AppendBody(nil, bodyMagic, obj); err != nil {
			return c.fail(s, "%s: %v", name, err)
		}
	}
	if _, err := s.out.Write(out); err != nil {
		return c.fail(s, "write: %v", err)
	}
	return exitOK
}

// readMessage reads a whole message in tagged JSON or a bare value, which
// gets the default header.
func readMessage(data []byte) (xpc.RemoteMessage, error) {
	if isMessageJSON(data) {
		return xpc.UnmarshalTaggedJSONMessage(data)
	}
	obj, err := xpc.UnmarshalTaggedJSON(data)
	if err != nil {
		return xpc.RemoteMessage{}, err
	}
	return xpc.RemoteMessage{
		Header: xpc.WrapperHeader{Flags: xpc.FlagAlwaysSet | xpc.FlagDataPresent},
		Body:   obj,
	}, nil
}

// isMessageJSON reports whether data is a JSON object whose first key is
// one of a message's (flags, id, body), none of which is a type name.
func isMessageJSON(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok {
	case "flags", "id", "body":
		return true
	}
	return false
}

// parseNumber parses decimal or 0x-prefixed hex that fits in bits.
func parseNumber(s string, bits int) (uint64, error) {
	base := 10
	digits := s
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		base, digits = 16, s[2:]
	}
	v, err := strconv.ParseUint(digits, base, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a %d-bit decimal or 0x-hex number", s, bits)
	}
	return v, nil
}
