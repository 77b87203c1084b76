package polkittest

import (
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/goxpc/xpc/internal/dbustest"
)

// The authority's name on the bus, object and interface.
const (
	BusName   = "org.freedesktop.PolicyKit1"
	Path      = "/org/freedesktop/PolicyKit1/Authority"
	Interface = "org.freedesktop.PolicyKit1.Authority"
)

// Subject is polkit's subject, (sa{sv}): for a process, kind
// "unix-process" and details pid, start-time and uid.
type Subject struct {
	Kind    string
	Details map[string]dbus.Variant
}

// Check is what the fake authority was asked.
type Check struct {
	Subject Subject
	Action  string
	Details map[string]string
	Flags   uint32
	// ID is the check's cancellation id.
	ID string
}

// Result is the authority's answer, (bba{ss}).
type Result struct {
	Authorized, Challenge bool
	Details               map[string]string
}

// Answer answers a check: a result, or an error; neither is "never":
// the check waits until it is cancelled.
type Answer func(Check) (*Result, *dbus.Error)

// Authority is a fake of polkit's authority. It records what it is asked
// and answers with its Answer.
type Authority struct {
	// Conn is the authority's connection; closing it takes the authority
	// off the bus.
	Conn *dbus.Conn
	// Cancels receives the ids CancelCheckAuthorization names (up to 100
	// unread).
	Cancels chan string
	// Arrived receives the id of each check as it arrives (up to 100
	// unread).
	Arrived chan string

	mu      sync.Mutex
	answer  Answer
	checks  []Check
	waiting map[string]chan struct{} // by cancellation id
}

// Start exports a fake authority on b, answering with answer; its waiting
// checks are released at the test's end.
func Start(t testing.TB, b *dbustest.Bus, answer Answer) *Authority {
	t.Helper()
	f := &Authority{Conn: b.Connect(t), answer: answer, waiting: map[string]chan struct{}{},
		Cancels: make(chan string, 100), Arrived: make(chan string, 100)}
	if err := f.Conn.Export(f, Path, Interface); err != nil {
		t.Fatal(err)
	}
	dbustest.Own(t, f.Conn, BusName)
	t.Cleanup(f.Release)
	return f
}

// CheckAuthorization is the Authority's method.
func (f *Authority) CheckAuthorization(s Subject, action string, details map[string]string, flags uint32, id string) (Result, *dbus.Error) {
	c := Check{Subject: s, Action: action, Details: details, Flags: flags, ID: id}
	f.mu.Lock()
	f.checks = append(f.checks, c)
	answer := f.answer
	f.mu.Unlock()
	f.Arrived <- id
	r, err := answer(c)
	if r != nil || err != nil {
		if r == nil {
			return Result{}, err
		}
		return *r, err
	}
	wait := make(chan struct{})
	f.mu.Lock()
	f.waiting[id] = wait
	f.mu.Unlock()
	<-wait
	return Result{}, dbus.NewError("org.freedesktop.PolicyKit1.Error.Cancelled", []any{"cancelled"})
}

// CancelCheckAuthorization is the Authority's method: it ends the check
// with that id, as polkitd does, with a cancelled error.
func (f *Authority) CancelCheckAuthorization(id string) *dbus.Error {
	f.Cancels <- id
	f.mu.Lock()
	defer f.mu.Unlock()
	if w, ok := f.waiting[id]; ok {
		close(w)
		delete(f.waiting, id)
		return nil
	}
	return dbus.NewError("org.freedesktop.PolicyKit1.Error.Failed", []any{"no such check"})
}

// SetAnswer makes the authority answer with answer from now on.
func (f *Authority) SetAnswer(answer Answer) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

// Release ends every waiting check.
func (f *Authority) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, w := range f.waiting {
		close(w)
		delete(f.waiting, id)
	}
}

// Checks returns the checks made so far.
func (f *Authority) Checks() []Check {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Check(nil), f.checks...)
}

// Answering returns an Answer that is always r.
func Answering(r Result) Answer {
	return func(Check) (*Result, *dbus.Error) { return &r, nil }
}

// Authorized is an Answer that always authorizes.
func Authorized(Check) (*Result, *dbus.Error) { return &Result{Authorized: true}, nil }

// Failing returns an Answer that always fails with the D-Bus error name.
func Failing(name string) Answer {
	return func(Check) (*Result, *dbus.Error) { return nil, dbus.NewError(name, []any{"it failed"}) }
}

// Never is an Answer that waits until the check is cancelled.
func Never(Check) (*Result, *dbus.Error) { return nil, nil }
