package polkit

import (
	"sync"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/goxpc/xpc/internal/dbustest"
)

// check is what the fake authority was asked.
type check struct {
	Subject subject
	Action  string
	Details map[string]string
	Flags   uint32
	ID      string
}

// result is the authority's answer, (bba{ss}).
type result struct {
	Authorized, Challenge bool
	Details               map[string]string
}

// fakeAuthority is org.freedesktop.PolicyKit1's Authority. It records
// what it is asked and answers with answer; an answer of nil result and
// nil error is "never": the check waits until it is cancelled.
type fakeAuthority struct {
	conn    *dbus.Conn
	answer  func(check) (*result, *dbus.Error)
	mu      sync.Mutex
	checks  []check
	waiting map[string]chan struct{} // by cancellation id
	cancels chan string              // the ids CancelCheckAuthorization named
	arrived chan string              // the ids of checks, as they arrive
}

// startAuthority exports a fake authority on b, answering with answer.
func startAuthority(t testing.TB, b *dbustest.Bus, answer func(check) (*result, *dbus.Error)) *fakeAuthority {
	t.Helper()
	f := &fakeAuthority{conn: b.Connect(t), answer: answer, waiting: map[string]chan struct{}{},
		cancels: make(chan string, 100), arrived: make(chan string, 100)}
	if err := f.conn.Export(f, authPath, authIface); err != nil {
		t.Fatal(err)
	}
	dbustest.Own(t, f.conn, busName)
	return f
}

// CheckAuthorization is the Authority's method.
func (f *fakeAuthority) CheckAuthorization(s subject, action string, details map[string]string, flags uint32, id string) (result, *dbus.Error) {
	c := check{Subject: s, Action: action, Details: details, Flags: flags, ID: id}
	f.mu.Lock()
	f.checks = append(f.checks, c)
	answer := f.answer
	f.mu.Unlock()
	f.arrived <- id
	r, err := answer(c)
	if r != nil || err != nil {
		if r == nil {
			return result{}, err
		}
		return *r, err
	}
	wait := make(chan struct{})
	f.mu.Lock()
	f.waiting[id] = wait
	f.mu.Unlock()
	<-wait
	return result{}, dbus.NewError("org.freedesktop.PolicyKit1.Error.Cancelled", []any{"cancelled"})
}

// CancelCheckAuthorization is the Authority's method: it ends the check
// with that id, as polkitd does, with a cancelled error.
func (f *fakeAuthority) CancelCheckAuthorization(id string) *dbus.Error {
	f.cancels <- id
	f.mu.Lock()
	defer f.mu.Unlock()
	if w, ok := f.waiting[id]; ok {
		close(w)
		delete(f.waiting, id)
		return nil
	}
	return dbus.NewError("org.freedesktop.PolicyKit1.Error.Failed", []any{"no such check"})
}

// setAnswer makes the authority answer with answer from now on.
func (f *fakeAuthority) setAnswer(answer func(check) (*result, *dbus.Error)) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

// release ends every waiting check.
func (f *fakeAuthority) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, w := range f.waiting {
		close(w)
		delete(f.waiting, id)
	}
}

// got returns the checks made so far.
func (f *fakeAuthority) got() []check {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]check(nil), f.checks...)
}

// answering returns an answer func that always answers r.
func answering(r result) func(check) (*result, *dbus.Error) {
	return func(check) (*result, *dbus.Error) { return &r, nil }
}

// failing returns an answer func that always fails with name.
func failing(name string) func(check) (*result, *dbus.Error) {
	return func(check) (*result, *dbus.Error) { return nil, dbus.NewError(name, []any{"it failed"}) }
}

// never is an answer func that waits to be cancelled.
func never(check) (*result, *dbus.Error) { return nil, nil }
