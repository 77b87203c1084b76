package xpc

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/sock"
	"golang.org/x/sys/unix"
)

// newConfig is the configuration of a connection made by hand in a test
// (newPeerConnection, lookupService), with every option accepted.
func newConfig(opts []Option) (config, error) { return configure(^constructor(0), opts) }

// The rules: which constructors each option applies to. Every option the
// package declares must be here, and every constructor that takes options
// in optionConstructors.
var (
	connsAndListenersNames = []string{"NewServiceConnection", "NewEndpointConnection", "NewConnectionFromFile",
		"DialUnix", "NewListener", "ListenUnix", "NewListenerFromFile", "CheckIn", "CheckInFile", "NewSession", "NewEndpointSession"}
	optionRules = []struct {
		name    string
		make    func(t *testing.T) Option
		applies []string
	}{
		{"WithMaxMessageSize", func(*testing.T) Option { return WithMaxMessageSize(1 << 20) }, connsAndListenersNames},
		{"WithMaxReceiveSize", func(*testing.T) Option { return WithMaxReceiveSize(1 << 20) }, connsAndListenersNames},
		{"WithMaxQueuedBytes", func(*testing.T) Option { return WithMaxQueuedBytes(2 << 20) }, connsAndListenersNames},
		{"WithMaxUnreadBytes", func(*testing.T) Option { return WithMaxUnreadBytes(2 << 20) }, connsAndListenersNames},
		{"WithMaxFDs", func(*testing.T) Option { return WithMaxFDs(8) }, connsAndListenersNames},
		{"WithTransactions", func(*testing.T) Option { return WithTransactions(&Transactions{}) }, connsAndListenersNames},
		{"WithBootstrapSocket", func(*testing.T) Option { return WithBootstrapSocket("/nonexistent/xpcd.sock") },
			[]string{"NewServiceConnection", "NewBootstrap", "NewNotifier", "PostNotification", "NewSession"}},
		{"WithDomain", func(*testing.T) Option { return WithDomain("system") }, []string{"NewServiceConnection", "NewSession"}},
		{"WithBootstrap", func(t *testing.T) Option {
			b, err := NewBootstrap()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return WithBootstrap(b)
		}, []string{"NewServiceConnection", "NewSession"}},
		{"WithPeerRequirement", func(*testing.T) Option { return WithPeerRequirement(MustParseRequirement("uid 0")) },
			[]string{"NewServiceConnection", "NewEndpointConnection", "NewConnectionFromFile", "DialUnix",
				"NewListener", "ListenUnix", "NewListenerFromFile", "Listen", "NewSession", "NewEndpointSession"}},
		{"WithStrictDecoding", func(*testing.T) Option { return WithStrictDecoding() },
			append(append([]string{}, connsAndListenersNames...), "Listen")},
	}
)

// optionConstructors calls each constructor that takes options with opt,
// undoes what it made, and returns its error.
func optionConstructors(t *testing.T) map[string]func(opt Option) error {
	ctx := testCtx(t)
	dir := t.TempDir()
	paths := 0
	path := func() string { paths++; return filepath.Join(dir, "s"+strings.Repeat("x", paths)) }
	dialTo := path()
	connection := func(c *Connection, err error) error {
		if err == nil {
			c.Cancel()
		}
		return err
	}
	// A listener is activated before it is cancelled: a path listener
	// lets go of all its descriptors only once it has run.
	listener := func(l *Listener, err error) error {
		if err == nil {
			l.SetHandler(func(p *Connection) { p.Cancel() })
			l.Activate()
			l.Cancel()
			waitClosed(t, l.Done(), "listener")
		}
		return err
	}
	target, err := ListenUnix(dialTo, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener(target, nil) })
	// Those that connect at once find no xpcd at the socket the
	// options name: the options were accepted.
	noXPCD := func(err error) error {
		if errors.Is(err, ErrInterrupted) || errors.Is(err, ErrNoBootstrap) {
			return nil
		}
		return err
	}
	return map[string]func(Option) error{
		"NewServiceConnection": func(o Option) error { return connection(NewServiceConnection("com.example.options", o)) },
		"NewNotifier": func(o Option) error {
			n, err := NewNotifier(ctx, o)
			if err == nil {
				n.Close()
			}
			return noXPCD(err)
		},
		"PostNotification": func(o Option) error { return noXPCD(PostNotification(ctx, "com.example.options", o)) },
		"NewEndpointConnection": func(o Option) error {
			l, err := NewListener()
			if err != nil {
				t.Fatal(err)
			}
			defer l.Cancel()
			ep, err := l.Endpoint()
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			return connection(NewEndpointConnection(ep, o))
		},
		"NewSession": func(o Option) error {
			s, err := NewSession(ctx, "com.example.options", nil, o)
			if err == nil {
				s.Cancel()
				waitClosed(t, s.Done(), "session")
			}
			return noXPCD(err)
		},
		"NewEndpointSession": func(o Option) error {
			l, err := NewListener()
			if err != nil {
				t.Fatal(err)
			}
			ep, err := l.Endpoint()
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			l.SetHandler(func(p *Connection) { p.Cancel() })
			l.Activate()
			defer func() { l.Cancel(); waitClosed(t, l.Done(), "listener") }()
			s, err := NewEndpointSession(ctx, ep, nil, o)
			if err == nil {
				s.Cancel()
				waitClosed(t, s.Done(), "session")
			}
			if errors.Is(err, ErrInvalid) {
				return nil // connected: the options were accepted
			}
			return err
		},
		"NewConnectionFromFile": func(o Option) error {
			a, b, err := sock.Pair()
			if err != nil {
				t.Fatal(err)
			}
			defer closeRaw(b)
			f := os.NewFile(uintptr(a), "options-test")
			defer f.Close()
			return connection(NewConnectionFromFile(f, o))
		},
		"DialUnix":    func(o Option) error { return connection(DialUnix(ctx, dialTo, o)) },
		"NewListener": func(o Option) error { return listener(NewListener(o)) },
		"ListenUnix":  func(o Option) error { return listener(ListenUnix(path(), 0o600, o)) },
		"NewListenerFromFile": func(o Option) error {
			f, _ := bindSocket(t, unix.SOCK_SEQPACKET, true)
			return listener(NewListenerFromFile(f, o))
		},
		"CheckIn": func(o Option) error {
			// Not launched by xpcd: an accepted option gets as far as
			// ErrNotLaunched.
			_, err := CheckIn(ctx, o)
			if errors.Is(err, ErrNotLaunched) {
				return nil
			}
			if err == nil {
				t.Fatal("CheckIn worked outside xpcd")
			}
			return err
		},
		"CheckInFile": func(o Option) error {
			a, b, err := sock.Pair()
			if err != nil {
				t.Fatal(err)
			}
			defer closeRaw(b)
			f := os.NewFile(uintptr(a), "options-test")
			defer f.Close()
			s, err := CheckInFile(ctx, f, "com.example.options", o)
			if err == nil {
				s.Close()
			}
			return err
		},
		"Listen": func(o Option) error {
			// The fake xpcd does not answer the check-in: an accepted
			// option gets as far as ErrNoReply.
			l, err := newTestService(t, &txRecorder{}).Listen(ctx, "com.example.options", o)
			if errors.Is(err, ErrNoReply) {
				return nil
			}
			if err == nil {
				l.Cancel()
				t.Fatal("Listen checked in with a fake xpcd that does not answer")
			}
			return err
		},
		"NewBootstrap": func(o Option) error {
			b, err := NewBootstrap(o)
			if err == nil {
				b.Close()
			}
			return err
		},
	}
}

// TestOptionRules gives every option to every constructor: one that
// applies is accepted, any other is an *OptionError naming both.
func TestOptionRules(t *testing.T) {
	leakCheck(t)
	t.Setenv(bootstrap.CheckinFDEnv, "")
	options, constructors := declaredOptions(t)
	var named []string
	for _, r := range optionRules {
		named = append(named, r.name)
	}
	sort.Strings(named)
	if !slices.Equal(named, options) {
		t.Fatalf("options declared %q, classified in optionRules %q: classify each new option", options, named)
	}
	calls := optionConstructors(t)
	var have []string
	for name := range calls {
		have = append(have, name)
	}
	sort.Strings(have)
	if !slices.Equal(have, constructors) {
		t.Fatalf("constructors that take options %q, tested %q: add each new one", constructors, have)
	}
	for _, r := range optionRules {
		for _, ctor := range constructors {
			err := calls[ctor](r.make(t))
			if slices.Contains(r.applies, ctor) {
				if err != nil {
					t.Errorf("%s(%s): %v, want it accepted", ctor, r.name, err)
				}
				continue
			}
			var oe *OptionError
			if !errors.Is(err, ErrOptionNotApplicable) || !errors.As(err, &oe) || oe.Option != r.name || oe.Constructor != ctor {
				t.Errorf("%s(%s): %v, want an *OptionError", ctor, r.name, err)
				continue
			}
			if want := "xpc: " + r.name + " does not apply to " + ctor; err.Error() != want {
				t.Errorf("%s(%s): %q, want %q", ctor, r.name, err, want)
			}
		}
	}
}

// TestOptionNotApplicableFirst: an option that does not apply is reported
// as such even with a bad argument, and a bad argument to one that applies
// is still its own error.
func TestOptionNotApplicableFirst(t *testing.T) {
	if _, err := NewListener(WithDomain("")); !errors.Is(err, ErrOptionNotApplicable) {
		t.Errorf("NewListener(WithDomain(\"\")): %v", err)
	}
	_, err := NewServiceConnection("com.example.options", WithDomain(""))
	if err == nil || errors.Is(err, ErrOptionNotApplicable) {
		t.Errorf("NewServiceConnection(WithDomain(\"\")): %v, want the bad argument", err)
	}
}

// declaredOptions parses the package's source for its options (exported
// functions returning Option) and its constructors that take them (exported
// functions and methods with a ...Option parameter).
func declaredOptions(t *testing.T) (options, constructors []string) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			if fd.Recv == nil && fd.Type.Results != nil && len(fd.Type.Results.List) == 1 && isIdent(fd.Type.Results.List[0].Type, "Option") {
				options = append(options, fd.Name.Name)
			}
			for _, p := range fd.Type.Params.List {
				if e, ok := p.Type.(*ast.Ellipsis); ok && isIdent(e.Elt, "Option") {
					constructors = append(constructors, fd.Name.Name)
				}
			}
		}
	}
	sort.Strings(options)
	sort.Strings(constructors)
	if len(options) == 0 || len(constructors) == 0 {
		t.Fatalf("found options %q and constructors %q", options, constructors)
	}
	return options, constructors
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
