package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/spf13/pflag"
)

var plistConvertCommand = &command{
	name:    "plist convert",
	args:    "--to xml|binary|json|tagged-json [-o|--output OUT] FILE",
	summary: "convert a property list to XML, binary, JSON or tagged JSON",
	help: `Reads FILE ("-" for standard input): a property list in XML, binary,
OpenStep or GNUstep form, or JSON, plain or tagged. Writes it in the form
--to names, to OUT or standard output. Like plutil -convert, but never in
place.

  xml, binary   a property list
  json          plain JSON, as plutil -convert json writes it: objects with
                sorted keys, arrays, strings, numbers, booleans. Data and
                dates have no JSON form and are refused, naming where they
                are, as plutil refuses them; so are NaN and infinities.
  tagged-json   tagged JSON, which keeps every value and type (see the xpc
                package documentation)

JSON input is tagged JSON when it is an object of one key naming a type
({"dictionary": {...}}), plain JSON otherwise; in plain JSON a number
without a fraction or exponent is an integer, others are reals.

Property lists have no null, uuid, error or descriptor values and keep no
key order: see the conversion rules in the xpc package documentation.`,
	setup: setupPlistConvert,
}

func setupPlistConvert(fs *pflag.FlagSet) runFunc {
	to := fs.String("to", "", "output `format`: xml, binary, json (plain) or tagged-json")
	outPath := fs.StringP("output", "o", "", "write to `OUT` instead of standard output")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return plistConvert(s, c, pos, *to, *outPath)
	}
}

// plistWriters are the forms plist convert writes, by --to.
var plistWriters = map[string]func(xpc.Object) ([]byte, error){
	"xml":    func(o xpc.Object) ([]byte, error) { return xpc.ToPlist(o, xpc.PlistXML) },
	"binary": func(o xpc.Object) ([]byte, error) { return xpc.ToPlist(o, xpc.PlistBinary) },
	"json":   marshalPlainJSON,
	"tagged-json": func(o xpc.Object) ([]byte, error) {
		js, err := xpc.MarshalTaggedJSON(o)
		if err != nil {
			return nil, err
		}
		return indentJSON(js)
	},
}

func plistConvert(s stdio, c *command, pos []string, to, outPath string) int {
	switch {
	case len(pos) == 0:
		return c.usageError(s, "no input FILE")
	case len(pos) > 1:
		return c.usageError(s, "too many arguments")
	}
	convert := plistWriters[to]
	switch {
	case to == "":
		return c.usageError(s, "--to is required")
	case convert == nil:
		return c.usageError(s, fmt.Sprintf("--to %q: want xml, binary, json or tagged-json", to))
	}

	obj, name, err := readPlistInput(s, pos[0])
	if err != nil {
		return c.fail(s, "%v", err)
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

// readPlistInput reads the property list or JSON document in the named
// file, or standard input for "-", as readPlistOrJSON does. It returns
// the name to use in messages; its errors name the file already.
func readPlistInput(s stdio, path string) (xpc.Object, string, error) {
	data, name, err := readInput(s, path)
	if err != nil {
		return nil, name, err
	}
	obj, err := readPlistOrJSON(data)
	if err != nil {
		return nil, name, fmt.Errorf("%s: %w", name, plistReadError(err))
	}
	return obj, name, nil
}

// plistReadError words a document FromPlist refused whole as plist lint
// does, "not a property list: DETAIL", without the library's prefixes
// ("xpc: plist: malformed property list: plist: "); any other error is
// err.
func plistReadError(err error) error {
	var pe *xpc.PlistError
	if !errors.As(err, &pe) || pe.Path != "" || !errors.Is(err, xpc.ErrBadPlist) {
		return err
	}
	detail := strings.TrimPrefix(strings.TrimPrefix(pe.Err.Error(), xpc.ErrBadPlist.Error()+": "), "plist: ")
	return fmt.Errorf("not a property list: %s", detail)
}

// taggedTypes are the keys of tagged JSON's one-key objects.
var taggedTypes = []string{"null", "bool", "int64", "uint64", "double", "date", "data", "string",
	"uuid", "array", "dictionary", "error", "fd", "shmem", "endpoint"}

// readPlistOrJSON reads a property list, or a JSON document: tagged JSON
// if it is an object of one key naming a type, plain JSON otherwise. A
// JSON document that does not read as JSON is tried as a plist too (an
// OpenStep "{}" is valid JSON) before its JSON error is reported.
func readPlistOrJSON(data []byte) (xpc.Object, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') || !json.Valid(trimmed) {
		obj, _, err := xpc.FromPlist(data)
		return obj, err
	}
	var obj xpc.Object
	var jerr error
	if looksTagged(trimmed) {
		obj, jerr = xpc.UnmarshalTaggedJSON(data)
	} else {
		obj, jerr = xpc.FromPlainJSON(data)
	}
	if jerr == nil {
		return obj, nil
	}
	if obj, _, err := xpc.FromPlist(data); err == nil {
		return obj, nil
	}
	return nil, jerr
}

// looksTagged reports whether js, valid JSON, is an object of one key
// that names a type, as every tagged JSON value is.
func looksTagged(js []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(js, &m) != nil || len(m) != 1 {
		return false
	}
	for k := range m {
		return slices.Contains(taggedTypes, k)
	}
	return false
}

func oneLine(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("\n"), []byte(" ")))
}
