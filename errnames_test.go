package xpc

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// publicPackages are the module's packages users import, by directory.
var publicPackages = []string{".", "launchd", "xpctest", "typed", "bundle"}

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
		// Errors that wrap another error of the package (a cause, a
		// detail, an error object's description) name it once too.
		{"dial, path too long", dialErr("/" + strings.Repeat("p", 200)), ErrPathTooLong},
		{"connection from nil", func() error { _, err := NewConnectionFromFile(nil); return err }(), ErrNilObject},
		{"connection from a file", connectionFromFileErr(t), unix.ENOTSOCK},
		{"lookup without xpcd", lookupErr(t), ErrNoBootstrap},
		{"protocol error", protocolErr(t), ErrProtocol},
		{"reply failed", replyFailedErr(t), ErrReplyFailed},
		{"not launched", notLaunchedErr(t), ErrNotLaunched},
		{"MarshalXPC", func() error { _, err := Marshal(struct{ F prefixMarshaler }{}); return err }(), ErrUnsupportedType},
		{"UnmarshalXPC", ObjectInto(Dict("F", Int64(1000)), &struct{ F prefixUnmarshaler }{}), ErrOverflow},
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

// TestInternalErrorsUnprefixed checks that the transport's packages never
// start an error's text with "xpc: ": the root package, which returns their
// errors, names itself once, and would otherwise name itself twice or
// depend on which internal call failed.
func TestInternalErrorsUnprefixed(t *testing.T) {
	fset := token.NewFileSet()
	for _, dir := range []string{"internal/sock", "internal/wire"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(af, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "xpc: ") {
					t.Errorf("%s: %q: an internal package's error must not start with the prefix", fset.Position(lit.Pos()), s)
				}
				return true
			})
		}
	}
}

func dialErr(path string) error {
	_, err := DialUnix(context.Background(), path)
	return err
}

// connectionFromFileErr is NewConnectionFromFile's error for a file that
// is not a socket.
func connectionFromFileErr(t *testing.T) error {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = NewConnectionFromFile(f)
	return err
}

// lookupErr is a send's error on a service connection whose xpcd does not
// answer: an interruption whose cause is an error of the package.
func lookupErr(t *testing.T) error {
	c, err := NewServiceConnection("org.goxpc.test.none", WithBootstrapSocket(filepath.Join(t.TempDir(), "none.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cancel()
	c.Activate()
	return c.Send(testCtx(t), Dict())
}

// protocolErr is the error that ends a connection whose peer sent a body
// that does not decode.
func protocolErr(t *testing.T) error {
	c, _, fd := hostilePeer(t, nil)
	_ = rawSend(t, fd, frameOf(wire.KindMessage, 0, 0, 0, []byte("not a body")))
	waitClosed(t, c.Done(), "connection")
	return c.Err()
}

// replyFailedErr is a send's error when the peer's reply was over the
// peer's WithMaxMessageSize: the error object says why.
func replyFailedErr(t *testing.T) error {
	l := serve(t, handlerFor(func(ctx context.Context, m *Message) {
		_ = m.Reply(ctx, Dict("k", Data(make([]byte, 4096))))
	}), WithMaxMessageSize(1024))
	c := dial(t, l, newTestHandler(nil))
	_, err := c.SendWithReply(testCtx(t), Dict())
	return err
}

// notLaunchedErr is CheckIn's error when its check-in channel is not a
// socket. CheckIn closes the descriptor it is given.
func notLaunchedErr(t *testing.T) error {
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(bootstrap.CheckinFDEnv, strconv.Itoa(fd))
	_, err = CheckIn(testCtx(t))
	return err
}

// prefixMarshaler and prefixUnmarshaler convert themselves with the
// package's own functions, and pass their errors on.
type prefixMarshaler struct{}

func (prefixMarshaler) MarshalXPC() (Object, error) { return ValueOf(make(chan int)) }

type prefixUnmarshaler struct{ v int8 }

func (u *prefixUnmarshaler) UnmarshalXPC(o Object) error { return ObjectInto(o, &u.v) }
