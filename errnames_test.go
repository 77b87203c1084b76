package xpc

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// publicPackages are the module's packages users import, by directory.
var publicPackages = []string{".", "launchd", "xpctest"}

// exportedSentinels returns, for each exported package-level variable named
// Err* in dir's non-test files, the text given to errors.New ("" when it is
// made some other way).
func exportedSentinels(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !name.IsExported() || !strings.HasPrefix(name.Name, "Err") {
						continue
					}
					out[name.Name] = ""
					if i < len(vs.Values) {
						out[name.Name] = errorsNewText(vs.Values[i])
					}
				}
			}
		}
	}
	return out
}

// errorsNewText returns the string literal given to errors.New in e, or "".
func errorsNewText(e ast.Expr) string {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return ""
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "New" {
		return ""
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		return ""
	}
	return s
}

// TestErrorNaming holds the error naming scheme (CHANGES.md): an exported
// sentinel's name is used by one package only, so the same name in xpc
// and launchd never means two things; and its text is the kind alone, a
// few lower-case words without a package prefix. The package prefix is
// added once, by the error a function returns (TestErrorTextsPrefixed).
func TestErrorNaming(t *testing.T) {
	owner := map[string]string{}
	for _, dir := range publicPackages {
		for name, text := range exportedSentinels(t, dir) {
			if prev, dup := owner[name]; dup {
				t.Errorf("%s is declared in %s and in %s: give one of them a name of its own", name, prev, dir)
			}
			owner[name] = dir
			if text == "" {
				continue
			}
			if strings.Contains(text, ": ") {
				t.Errorf("%s/%s = %q: a kind's text is the kind alone, without a prefix", dir, name, text)
			}
			if r := text[0]; r >= 'A' && r <= 'Z' {
				t.Errorf("%s/%s = %q: a kind's text starts in lower case", dir, name, text)
			}
		}
	}
	if len(owner) < 20 {
		t.Fatalf("found %d sentinels; the parser missed them", len(owner))
	}
}

// TestErrorTextsPrefixed checks that what the package's functions return
// says where it comes from, once: "xpc: ..." and never "xpc: ... xpc: ".
func TestErrorTextsPrefixed(t *testing.T) {
	huge := Dict("k", Data(make([]byte, 4096)))
	l := serve(t, handlerFor(echo))
	c := dial(t, l, newTestHandler(nil), WithMaxMessageSize(1024))
	body, err := Encode(Dict("a", Int64(1)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		kind error
	}{
		{"decode", func() error { _, err := Decode([]byte{1, 2}); return err }(), ErrTruncated},
		{"encode", func() error { _, err := Encode(nil); return err }(), ErrNilObject},
		{"unmarshal", Unmarshal(body, struct{}{}), ErrNotPointer},
		{"json", func() error { _, err := UnmarshalTaggedJSON([]byte(`{"int64":`)); return err }(), ErrJSONSyntax},
		{"plist", func() error { _, _, err := FromPlist([]byte("<plist>")); return err }(), ErrBadPlist},
		{"key", func() error { _, err := Dict().String("x"); return err }(), ErrKeyNotFound},
		{"too large", c.Send(context.Background(), huge), ErrTooLarge},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		s := c.err.Error()
		if !strings.HasPrefix(s, "xpc: ") || strings.Count(s, "xpc: ") != 1 {
			t.Errorf("%s: %q: want one \"xpc: \" prefix", c.name, s)
		}
		if !errors.Is(c.err, c.kind) {
			t.Errorf("%s: %v is not %v", c.name, c.err, c.kind)
		}
	}
}
