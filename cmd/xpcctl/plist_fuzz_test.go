package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unicode"

	"github.com/goxpc/xpc"
)

// FuzzPlistText feeds hostile bytes to plist lint, print and convert:
// none may panic, lint and print write nothing a terminal would act on
// (lint may write a tab),
// and what --to json writes reads back.
func FuzzPlistText(f *testing.F) {
	for _, name := range []string{"com.example.agent.plist", "com.example.agent.bplist"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "plist", name)); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{"", "{}", `{"a": [1, 2.5, "x\u001b"]}`, `{"dictionary": {}}`, "hello", "\x00\xff",
		"{Label = x; Program = /bin/true;}", `"ڍ\000"`, "bplist00", "<plist><array><data>AAEC</data><date>2024-01-01T00:00:00Z</date></array></plist>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var lint bytes.Buffer
		lintFile(terminal{&lint}, bytes.NewReader(data), "-", uint32(os.Geteuid()))
		for _, r := range lint.String() {
			if r != '\n' && r != '\t' && unicode.IsControl(r) {
				t.Fatalf("lint wrote %q:\n%q", r, lint.String())
			}
		}
		obj, err := readPlistOrJSON(data)
		if err != nil {
			return
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		printPlist(w, obj, 0)
		w.Flush()
		for _, r := range out.String() {
			if r != '\n' && !strconv.IsPrint(r) {
				t.Fatalf("print wrote %q:\n%q", r, out.String())
			}
		}
		if js, err := marshalPlainJSON(obj); err == nil {
			back, err := xpc.FromPlainJSON(js)
			if err != nil && !errors.Is(err, xpc.ErrTooDeep) {
				t.Fatalf("JSON %s does not read back: %v", js, err)
			}
			if err == nil {
				if js2, err := marshalPlainJSON(back); err != nil || !bytes.Equal(js, js2) {
					t.Fatalf("JSON changed on the way back:\n%s\n%s (%v)", js, js2, err)
				}
			}
		}
	})
}
