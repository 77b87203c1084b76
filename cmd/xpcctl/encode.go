package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/spf13/pflag"
)

var encodeCommand = &command{
	name:    "encode",
	args:    "[--magic local|remote] [--wrap [--flags N] [--id N]] [FILE]",
	summary: "serialize tagged JSON as an XPC body or RemoteXPC message",
	help: `Reads one value in tagged JSON (the form 'xpcctl decode --json' prints) from
FILE, or standard input if FILE is absent or "-", and writes its serialized
body to standard output. Dictionary keys are written in the JSON's order.

With --wrap, writes a RemoteXPC message instead: a 24-byte header, then the
body with the RemoteXPC magic, the only magic a RemoteXPC message's body has
(decode refuses a message whose body has the local one, and --wrap refuses
--magic local). The input may then also be a whole message,
{"flags":N,"id":N,"body":VALUE}; --flags and --id override its header. For a
bare value the header defaults to flags 0x101 (always-set|data) and id 0.
N is decimal or 0x-prefixed hex.`,
	setup: setupEncode,
}

// encodeOptions are encode's flags, checked.
type encodeOptions struct {
	magic     uint32  // the body magic, without --wrap
	wrap      bool    // write a RemoteXPC message
	flags, id *uint64 // with --wrap: the header's, when given
}

func setupEncode(fs *pflag.FlagSet) runFunc {
	magic := fs.String("magic", "", "the body's magic, `local|remote`: local (\"@XPC\", the default) or remote (RemoteXPC)")
	wrap := fs.Bool("wrap", false, "write a RemoteXPC message (implies --magic remote)")
	flagsArg := fs.String("flags", "", "with --wrap: the header's flags `N`")
	idArg := fs.String("id", "", "with --wrap: the header's message id `N`")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		if len(pos) > 1 {
			return c.usageError(s, "too many arguments")
		}
		set := map[string]bool{}
		fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
		opts, msg := checkEncodeFlags(*magic, *wrap, set, *flagsArg, *idArg)
		if msg != "" {
			return c.usageError(s, msg)
		}
		return runEncode(s, c, pos, opts)
	}
}

func runEncode(s stdio, c *command, pos []string, opts encodeOptions) int {
	data, name, err := readInput(s, firstOr(pos, ""))
	if err != nil {
		return c.fail(s, "%v", err)
	}
	out, err := encodeOutput(data, opts)
	if errors.Is(err, xpc.ErrNotTagged) {
		// Plain JSON, most likely: say which form encode reads.
		return c.fail(s, "%s: %v (encode reads tagged JSON, {\"dictionary\": {...}}, as decode --json prints it; plist convert --to tagged-json turns plain JSON into it)", name, err)
	}
	if err != nil {
		return c.fail(s, "%s: %v", name, err)
	}
	if _, err := s.out.Write(out); err != nil {
		return c.fail(s, "write: %v", err)
	}
	return exitOK
}

// checkEncodeFlags turns encode's flags into options, or says what is wrong
// with them. set holds the names of the flags given.
func checkEncodeFlags(magic string, wrap bool, set map[string]bool, flags, id string) (encodeOptions, string) {
	opts := encodeOptions{magic: xpc.MagicLocal, wrap: wrap}
	switch magic {
	case "", "local":
	case "remote":
		opts.magic = xpc.MagicRemote
	default:
		return opts, fmt.Sprintf("--magic %q: want local or remote", magic)
	}
	if wrap && magic == "local" {
		return opts, "--wrap writes a RemoteXPC message, whose body has the remote magic: drop --magic local"
	}
	if !wrap && (set["flags"] || set["id"]) {
		return opts, "--flags and --id need --wrap"
	}
	if set["flags"] {
		v, err := parseNumber(flags, 32)
		if err != nil {
			return opts, "--flags: " + err.Error()
		}
		opts.flags = &v
	}
	if set["id"] {
		v, err := parseNumber(id, 64)
		if err != nil {
			return opts, "--id: " + err.Error()
		}
		opts.id = &v
	}
	return opts, ""
}

// encodeOutput serializes data, tagged JSON, as opts say.
func encodeOutput(data []byte, opts encodeOptions) ([]byte, error) {
	if !opts.wrap {
		if isMessageJSON(data) {
			return nil, errors.New(`input is a whole message {"flags","id","body"}: use --wrap`)
		}
		obj, err := xpc.UnmarshalTaggedJSON(data)
		if err != nil {
			return nil, err
		}
		// Tagged JSON cannot hold out-of-band objects, so there are none.
		out, _, err := xpc.AppendBody(nil, opts.magic, obj)
		return out, err
	}
	m, err := readMessage(data)
	if err != nil {
		return nil, err
	}
	if opts.flags != nil {
		m.Header.Flags = uint32(*opts.flags)
	}
	if opts.id != nil {
		m.Header.ID = *opts.id
	}
	return xpc.EncodeWrapped(m)
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
