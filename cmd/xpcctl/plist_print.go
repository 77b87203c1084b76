package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/spf13/pflag"
)

var plistPrintCommand = &command{
	name:    "plist print",
	args:    "FILE",
	summary: "print a property list for people, as plutil -p does",
	help: `Reads FILE ("-" for standard input), a property list in any form or
JSON as plist convert reads it, and prints it for people, as plutil -p
does: dictionaries as "KEY" => VALUE lines with their keys sorted, arrays
as INDEX => VALUE, nested values indented, strings quoted, integers,
reals, true and false, dates in UTC, and data as {length = N, bytes =
0x...}, its middle left out past 32 bytes. Characters a terminal would act
on (control characters, escapes, bidirectional overrides) are printed
escaped, as in Go strings: a plist is anyone's input.`,
	setup: func(*pflag.FlagSet) runFunc { return runPlistPrint },
}

func runPlistPrint(ctx context.Context, s stdio, c *command, pos []string) int {
	switch {
	case len(pos) == 0:
		return c.usageError(s, "no FILE")
	case len(pos) > 1:
		return c.usageError(s, "too many arguments")
	}
	obj, _, err := readPlistInput(s, pos[0])
	if err != nil {
		return c.fail(s, "%v", err)
	}
	w := bufio.NewWriter(terminal{s.out})
	printPlist(w, obj, 0)
	w.WriteByte('\n')
	if err := w.Flush(); err != nil {
		return c.fail(s, "write: %v", err)
	}
	return exitOK
}

// Data longer than printDataMax bytes shows its first printDataHead and
// last printDataTail bytes.
const (
	printDataMax  = 32
	printDataHead = 24
	printDataTail = 8
)

// printPlist writes obj as plutil -p does, its nested lines indented by
// depth+1 steps of two spaces, with no final newline.
func printPlist(w io.Writer, obj xpc.Object, depth int) {
	indent := strings.Repeat("  ", depth+1)
	switch o := obj.(type) {
	case *xpc.Dictionary:
		io.WriteString(w, "{\n")
		keys := o.Keys()
		sort.Strings(keys) // byte order, as FromPlist's
		for _, k := range keys {
			fmt.Fprintf(w, "%s%s => ", indent, strconv.Quote(k))
			printPlist(w, o.Get(k), depth+1)
			io.WriteString(w, "\n")
		}
		io.WriteString(w, indent[2:]+"}")
	case xpc.Array:
		io.WriteString(w, "[\n")
		for i, e := range o {
			fmt.Fprintf(w, "%s%d => ", indent, i)
			printPlist(w, e, depth+1)
			io.WriteString(w, "\n")
		}
		io.WriteString(w, indent[2:]+"]")
	default:
		io.WriteString(w, printScalar(obj))
	}
}

// printScalar is a value that is no container, on one line.
func printScalar(obj xpc.Object) string {
	switch o := obj.(type) {
	case xpc.String:
		return strconv.Quote(string(o))
	case xpc.Int64:
		return strconv.FormatInt(int64(o), 10)
	case xpc.Uint64:
		return strconv.FormatUint(uint64(o), 10)
	case xpc.Double:
		f := float64(o)
		switch {
		case math.IsNaN(f):
			return "nan"
		case math.IsInf(f, 0):
			return strings.TrimPrefix(strconv.FormatFloat(f, 'g', -1, 64), "+")
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	case xpc.Bool:
		return strconv.FormatBool(bool(o))
	case xpc.Date:
		return time.Unix(0, int64(o)).UTC().Format("2006-01-02 15:04:05 +0000")
	case xpc.Data:
		return printData(o)
	case xpc.Null:
		return "null"
	case nil:
		return "(none)"
	}
	// Tagged JSON's other values: the codec's own rendering, quoted.
	return strconv.Quote(xpc.Format(obj))
}

// printData is data as CFData describes it: {length = N, bytes = 0x...},
// in groups of four bytes, its middle left out past printDataMax bytes.
func printData(b []byte) string {
	groups := func(b []byte) string {
		var parts []string
		for len(b) > 4 {
			parts = append(parts, hex.EncodeToString(b[:4]))
			b = b[4:]
		}
		return strings.Join(append(parts, hex.EncodeToString(b)), " ")
	}
	if len(b) == 0 {
		return "{length = 0, bytes = 0x}"
	}
	if len(b) <= printDataMax {
		return fmt.Sprintf("{length = %d, bytes = 0x%s}", len(b), groups(b))
	}
	return fmt.Sprintf("{length = %d, bytes = 0x%s ... %s}", len(b), groups(b[:printDataHead]), groups(b[len(b)-printDataTail:]))
}
