package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/goxpc/xpc"
	"github.com/spf13/pflag"
)

var plistConvertCommand = &command{
	name:    "plist convert",
	args:    "--to xml|binary|json [-o|--output OUT] FILE",
	summary: "convert a property list to XML, binary or tagged JSON",
	help: `Reads FILE ("-" for standard input): a property list in XML, binary,
OpenStep or GNUstep form, or a value in tagged JSON. Writes it in the form
--to names, to OUT or standard output: an XML or binary property list, or
tagged JSON. Like plutil -convert, but never in place.

Property lists have no null, uuid, error or descriptor values and keep no
key order: see the conversion rules in the xpc package documentation.`,
	setup: setupPlistConvert,
}

func setupPlistConvert(fs *pflag.FlagSet) runFunc {
	to := fs.String("to", "", "output `format`: xml, binary or json (tagged JSON)")
	outPath := fs.StringP("output", "o", "", "write to `OUT` instead of standard output")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return plistConvert(s, c, pos, *to, *outPath)
	}
}

func plistConvert(s stdio, c *command, pos []string, to, outPath string) int {
	switch {
	case len(pos) == 0:
		return c.usageError(s, "no input FILE")
	case len(pos) > 1:
		return c.usageError(s, "too many arguments")
	}
	var convert func(xpc.Object) ([]byte, error)
	switch to {
	case "xml":
		convert = func(o xpc.Object) ([]byte, error) { return xpc.ToPlist(o, xpc.PlistXML) }
	case "binary":
		convert = func(o xpc.Object) ([]byte, error) { return xpc.ToPlist(o, xpc.PlistBinary) }
	case "json":
		convert = func(o xpc.Object) ([]byte, error) {
			js, err := xpc.MarshalTaggedJSON(o)
			if err != nil {
				return nil, err
			}
			return indentJSON(js)
		}
	case "":
		return c.usageError(s, "--to is required")
	default:
		return c.usageError(s, fmt.Sprintf("--to %q: want xml, binary or json", to))
	}

	data, name, err := readInput(s, pos[0])
	if err != nil {
		return c.fail(s, "%v", err)
	}
	obj, err := readPlistOrJSON(data)
	if err != nil {
		return c.fail(s, "%s: %v", name, err)
	}
	out, err := convert(obj)
	if err != nil {
		return c.fail(s, "%s: %v", name, err)
	}
	if outPath != "" && outPath != "-" {
		if err := os.WriteFile(outPath, out, 0o644); err != nil {
			return c.fail(s, "%v", err)
		}
		return exitOK
	}
	if _, err := s.out.Write(out); err != nil {
		return c.fail(s, "write: %v", err)
	}
	return exitOK
}

// readPlistOrJSON reads a property list or, if data is a JSON object, a
// value in tagged JSON. A JSON document that is not tagged JSON is tried as
// a plist too (an OpenStep "{}" is valid JSON) before its JSON error is
// reported.
func readPlistOrJSON(data []byte) (xpc.Object, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		obj, jerr := xpc.UnmarshalTaggedJSON(data)
		if jerr == nil {
			return obj, nil
		}
		if obj, _, err := xpc.FromPlist(data); err == nil {
			return obj, nil
		}
		return nil, jerr
	}
	obj, _, err := xpc.FromPlist(data)
	return obj, err
}

func oneLine(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("\n"), []byte(" ")))
}
