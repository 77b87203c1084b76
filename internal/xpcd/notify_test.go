package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// posted is one OpNotify a test connection got.
type posted struct {
	name  string
	state uint64
}

// notifySink is a connection's handler that collects what xpcd tells it;
// while hold is locked, it does not read.
type notifySink struct {
	got  chan posted
	hold sync.Mutex
}

func newNotifySink() *notifySink { return &notifySink{got: make(chan posted, 1<<16)} }

func (s *notifySink) HandleMessage(_ context.Context, m *xpc.Message) {
	s.hold.Lock()
	defer s.hold.Unlock()
	if op, _ := m.Body.String(bootstrap.KeyOp); op != bootstrap.OpNotify {
		return
	}
	name, _ := m.Body.String(bootstrap.KeyName)
	state, _ := m.Body.Uint64(bootstrap.KeyNotifyState)
	s.got <- posted{name, state}
}

func (s *notifySink) HandleEvent(error) {}

// next waits for the next notification.
func (s *notifySink) next(t *testing.T) posted {
	t.Helper()
	select {
	case p := <-s.got:
		return p
	case <-time.After(testTimeout):
		t.Fatal("no notification came")
		return posted{}
	}
}

// none checks that nothing more comes for a while.
func (s *notifySink) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-s.got:
		t.Fatalf("unexpected notification %+v", p)
	case <-time.After(100 * time.Millisecond):
	}
}

func notifyReq(t *testing.T, c *xpc.Connection, op, name string, kv ...any) (*xpc.Dictionary, error) {
	t.Helper()
	return c.SendWithReply(testCtx(t), xpc.Dict(append([]any{bootstrap.KeyOp, op, bootstrap.KeyName, name}, kv...)...))
}

func mustNotify(t *testing.T, c *xpc.Connection, op, name string, kv ...any) *xpc.Dictionary {
	t.Helper()
	r, err := notifyReq(t, c, op, name, kv...)
	if err != nil {
		t.Fatalf("%s %s: %v", op, name, err)
	}
	return r
}

// wantRule checks that err is a refusal naming rule.
func wantRule(t *testing.T, what string, err error, rule string) {
	t.Helper()
	var re *xpc.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("%s: %v, want a refusal by rule %s", what, err, rule)
	}
	if r, _ := re.Object.String(bootstrap.KeyRule); r != rule {
		t.Fatalf("%s: %v (rule %q), want rule %s", what, err, r, rule)
	}
}

// A post reaches every registered connection with the name's state; get
// reads it; a cancelled registration and a closed connection hear no more.
func TestNotifyPostRegisterGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	a, b := newNotifySink(), newNotifySink()
	ca, cb := h.dial(a), h.dial(b)
	poster := h.dial(nil)
	mustNotify(t, ca, bootstrap.OpNotifyRegister, "com.example.changed")
	mustNotify(t, cb, bootstrap.OpNotifyRegister, "com.example.changed")
	mustNotify(t, cb, bootstrap.OpNotifyRegister, "com.example.other")
	mustNotify(t, poster, bootstrap.OpNotifyPost, "com.example.changed", bootstrap.KeyNotifyState, uint64(42))
	for _, s := range []*notifySink{a, b} {
		if p := s.next(t); p != (posted{"com.example.changed", 42}) {
			t.Fatalf("got %+v", p)
		}
	}
	// A post without a state keeps it.
	mustNotify(t, poster, bootstrap.OpNotifyPost, "com.example.changed")
	if p := a.next(t); p.state != 42 {
		t.Fatalf("got %+v", p)
	}
	b.next(t)
	if st, _ := mustNotify(t, poster, bootstrap.OpNotifyGet, "com.example.changed").Uint64(bootstrap.KeyNotifyState); st != 42 {
		t.Fatalf("get: %d", st)
	}
	if st, _ := mustNotify(t, poster, bootstrap.OpNotifyGet, "com.example.never").Uint64(bootstrap.KeyNotifyState); st != 0 {
		t.Fatalf("get of a name never posted: %d", st)
	}
	mustNotify(t, ca, bootstrap.OpNotifyCancel, "com.example.changed")
	cb.Cancel()
	waitFor(t, "the closed connection's registrations to end", func() bool {
		_, regs := h.d.notes().counts()
		return regs == 0
	})
	mustNotify(t, poster, bootstrap.OpNotifyPost, "com.example.changed", bootstrap.KeyNotifyState, uint64(43))
	a.none(t)
	// Names without a state or a registration are forgotten.
	if names, _ := h.d.notes().counts(); names != 1 {
		t.Errorf("%d names kept, want 1 (the one with a state)", names)
	}
	for _, bad := range []string{"", "a b", strings.Repeat("n", launchd.MaxNotificationNameLen+1)} {
		if _, err := notifyReq(t, poster, bootstrap.OpNotifyPost, bad); reasonOf(err) != bootstrap.ReasonBadRequest {
			t.Errorf("post %q: %v, want bad-request", bad, err)
		}
	}
	if _, err := notifyReq(t, poster, bootstrap.OpNotifyPost, "n", bootstrap.KeyNotifyState, "x"); reasonOf(err) != bootstrap.ReasonBadRequest {
		t.Errorf("a state that is a string: %v", err)
	}
}

// notes is the daemon's notification registry.
func (d *Daemon) notes() *notifyRegistry {
	for _, c := range d.comp {
		if r, ok := c.(*notifyRegistry); ok {
			return r
		}
	}
	return nil
}

// onPost is called after every successful post, with the state, and not
// for a refused one.
func TestNotifyOnPost(t *testing.T) {
	var mu sync.Mutex
	var got []posted
	r := newNotifyRegistry(notifyConfig{onPost: func(name string, state uint64) {
		mu.Lock()
		got = append(got, posted{name, state})
		mu.Unlock()
	}})
	if re := r.post("a", 7, true, 1000, false); re != nil {
		t.Fatal(re)
	}
	if re := r.post("a", 0, false, 1000, false); re != nil {
		t.Fatal(re)
	}
	for i := range maxNotifyStatesPerUser {
		r.post(fmt.Sprint("n", i), 1, true, 1001, false)
	}
	got = got[:2]
	if re := r.post("over", 1, true, 1001, false); re == nil || re.Rule != bootstrap.RuleNotifyLimit {
		t.Fatalf("state %d: %v", maxNotifyStatesPerUser+1, re)
	}
	if re := r.post("over", 1, true, 0, true); re != nil {
		t.Fatalf("root: %v", re)
	}
	want := []posted{{"a", 7}, {"a", 7}, {"over", 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("onPost got %v, want %v", got, want)
	}
}

// A connection that stops reading costs at most one queued notification
// per registration, whatever the number of posts; once it reads again it
// gets the latest state.
func TestNotifyCoalesces(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	slow := newNotifySink()
	c := h.dial(slow)
	mustNotify(t, c, bootstrap.OpNotifyRegister, "com.example.busy")
	var client *notifyClient
	h.d.notes().mu.Lock()
	for cl := range h.d.notes().clients {
		client = cl
	}
	h.d.notes().mu.Unlock()
	slow.hold.Lock()
	poster := h.dial(nil)
	const posts = 20000
	maxQueued := 0
	for i := 1; i <= posts; i++ {
		if err := poster.Send(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpNotifyPost, bootstrap.KeyName, "com.example.busy",
			bootstrap.KeyNotifyState, uint64(i))); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			client.ch.mu.Lock()
			maxQueued = max(maxQueued, len(client.ch.items))
			client.ch.mu.Unlock()
		}
	}
	// The last post is in once get answers.
	mustNotify(t, poster, bootstrap.OpNotifyGet, "com.example.busy")
	if maxQueued > 1 {
		t.Errorf("%d notifications queued for one registration", maxQueued)
	}
	slow.hold.Unlock()
	n := 0
	for {
		p := slow.next(t)
		n++
		if p.state == posts {
			break
		}
	}
	slow.none(t)
	if n >= posts {
		t.Errorf("%d notifications for %d posts: nothing coalesced", n, posts)
	}
	t.Logf("%d posts reached the slow client as %d notifications", posts, n)
}

// Registrations are bounded per connection and per user, states per user.
func TestNotifyLimits(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	knownUIDs(h)
	const uid = 1001
	own := func(i int) string { return fmt.Sprintf("user.uid.%d.n%d", uid, i) }
	var conns []*xpc.Connection
	for i := 0; i < maxNotifyRegsPerUser; i++ {
		if i%maxNotifyRegsPerConn == 0 {
			conns = append(conns, dialAs(t, h, uid))
		}
		mustNotify(t, conns[len(conns)-1], bootstrap.OpNotifyRegister, own(i))
	}
	_, err := notifyReq(t, conns[len(conns)-1], bootstrap.OpNotifyRegister, own(-1))
	wantRule(t, "a registration past the connection's limit", err, bootstrap.RuleNotifyLimit)
	_, err = notifyReq(t, dialAs(t, h, uid), bootstrap.OpNotifyRegister, own(-1))
	wantRule(t, "a registration past the user's limit", err, bootstrap.RuleNotifyLimit)
	// Registering again is no new registration.
	mustNotify(t, conns[0], bootstrap.OpNotifyRegister, own(0))
	// Another user is not held back; root has no per-user limit, but
	// the connection's.
	mustNotify(t, dialAs(t, h, uid+1), bootstrap.OpNotifyRegister, "com.example.x")
	root := h.dial(nil)
	for i := range maxNotifyRegsPerConn {
		mustNotify(t, root, bootstrap.OpNotifyRegister, own(i))
	}
	_, err = notifyReq(t, root, bootstrap.OpNotifyRegister, own(-1))
	wantRule(t, "root's registration past the connection's limit", err, bootstrap.RuleNotifyLimit)
	conns[0].Cancel()
	waitFor(t, "the registrations of a closed connection to end", func() bool {
		h.d.notes().mu.Lock()
		defer h.d.notes().mu.Unlock()
		return h.d.notes().regs[uid] == maxNotifyRegsPerUser-maxNotifyRegsPerConn
	})
	mustNotify(t, dialAs(t, h, uid), bootstrap.OpNotifyRegister, own(-1))

	poster := dialAs(t, h, uid)
	for i := 0; i < maxNotifyStatesPerUser; i++ {
		mustNotify(t, poster, bootstrap.OpNotifyPost, own(i), bootstrap.KeyNotifyState, uint64(1))
	}
	_, err = notifyReq(t, poster, bootstrap.OpNotifyPost, own(-2), bootstrap.KeyNotifyState, uint64(1))
	wantRule(t, "a state past the user's limit", err, bootstrap.RuleNotifyLimit)
	// A name with a state already may change it; a post without a state
	// costs nothing.
	mustNotify(t, poster, bootstrap.OpNotifyPost, own(0), bootstrap.KeyNotifyState, uint64(2))
	mustNotify(t, poster, bootstrap.OpNotifyPost, own(-2))
}

// grantPlist writes a root-owned plist granting the posting of name to
// processes that meet req, and bootstraps it into dom.
func grantJob(t *testing.T, h *harness, dom, label, name, req string) {
	t.Helper()
	dir := filepath.Join(h.dir, "plists")
	os.MkdirAll(dir, 0o755)
	p := h.writePlist(testJob{label: label, extra: map[string]any{
		launchd.NotificationsKey: map[string]any{name: map[string]any{"PostRequirement": req}},
	}}, dir)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, dom, bootstrap.KeyPath, p)
}

// Whose a name is decides who may register for, get and post it; a system
// name is posted by root, or by a process a system job's grant names. A
// user domain's job grants nothing.
func TestNotifyRights(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	knownUIDs(h)
	const uid, other = 1001, 1002
	c := dialAs(t, h, uid)
	mine, theirs := fmt.Sprintf("user.uid.%d.x", uid), fmt.Sprintf("user.uid.%d.x", other)
	for _, op := range []string{bootstrap.OpNotifyRegister, bootstrap.OpNotifyGet, bootstrap.OpNotifyPost} {
		_, err := notifyReq(t, c, op, theirs)
		wantRule(t, op+" of another user's name", err, bootstrap.RuleNotifyName)
		mustNotify(t, c, op, mine)
	}
	mustNotify(t, c, bootstrap.OpNotifyRegister, "com.example.sys")
	mustNotify(t, c, bootstrap.OpNotifyGet, "com.example.sys")
	_, err := notifyReq(t, c, bootstrap.OpNotifyPost, "com.example.sys")
	wantRule(t, "a user's post of a system name", err, bootstrap.RuleNotifyPost)
	// Root may post anything; the refused post changed nothing.
	root := h.dial(nil)
	mustNotify(t, root, bootstrap.OpNotifyPost, theirs, bootstrap.KeyNotifyState, uint64(5))
	mustNotify(t, root, bootstrap.OpNotifyPost, "com.example.sys", bootstrap.KeyNotifyState, uint64(6))

	// A grant in the user's own domain is none.
	grantJob(t, h, UserDomain(uid), "test.grant.user", "com.example.sys", fmt.Sprintf("uid %d", uid))
	_, err = notifyReq(t, c, bootstrap.OpNotifyPost, "com.example.sys", bootstrap.KeyNotifyState, uint64(7))
	wantRule(t, "a post granted by the user's own job", err, bootstrap.RuleNotifyPost)
	// A system job's grant for another uid is none either.
	grantJob(t, h, DomainSystem, "test.grant.other", "com.example.sys", fmt.Sprintf("uid %d", other))
	_, err = notifyReq(t, c, bootstrap.OpNotifyPost, "com.example.sys", bootstrap.KeyNotifyState, uint64(7))
	wantRule(t, "a post granted to another uid", err, bootstrap.RuleNotifyPost)
	if !strings.Contains(err.Error(), "test.grant.other") {
		t.Errorf("the refusal does not name the grant: %v", err)
	}
	// The system job's grant lets the user post that name, and no other.
	grantJob(t, h, DomainSystem, "test.grant", "com.example.sys", fmt.Sprintf("uid %d or uid 4242", uid))
	sink := newNotifySink()
	watcher := h.dial(sink)
	mustNotify(t, watcher, bootstrap.OpNotifyRegister, "com.example.sys")
	mustNotify(t, c, bootstrap.OpNotifyPost, "com.example.sys", bootstrap.KeyNotifyState, uint64(7))
	if p := sink.next(t); p != (posted{"com.example.sys", 7}) {
		t.Fatalf("got %+v", p)
	}
	_, err = notifyReq(t, c, bootstrap.OpNotifyPost, "com.example.sys2")
	wantRule(t, "a post of a name not granted", err, bootstrap.RuleNotifyPost)
	// Disabled or booted out, the grant is gone.
	h.mustAdmin(bootstrap.OpDisable, bootstrap.KeyTarget, DomainSystem+"/test.grant")
	_, err = notifyReq(t, c, bootstrap.OpNotifyPost, "com.example.sys")
	wantRule(t, "a post after the grant was disabled", err, bootstrap.RuleNotifyPost)
	h.mustAdmin(bootstrap.OpEnable, bootstrap.KeyTarget, DomainSystem+"/test.grant")
	mustNotify(t, c, bootstrap.OpNotifyPost, "com.example.sys")
	h.mustAdmin(bootstrap.OpBootout, bootstrap.KeyTarget, DomainSystem+"/test.grant", bootstrap.KeyWait, true)
	_, err = notifyReq(t, c, bootstrap.OpNotifyPost, "com.example.sys")
	wantRule(t, "a post after the grant was booted out", err, bootstrap.RuleNotifyPost)
}

// Sessions that registered and closed leave no goroutine behind.
func TestNotifyNoGoroutineLeak(t *testing.T) {
	h := newHarness(t)
	h.start()
	poster := h.dial(nil)
	mustNotify(t, poster, bootstrap.OpNotifyGet, "warm")
	before := runtime.NumGoroutine()
	var held []*notifySink
	for i := range 20 {
		s := newNotifySink()
		c := h.dial(s)
		mustNotify(t, c, bootstrap.OpNotifyRegister, "com.example.leak")
		mustNotify(t, c, bootstrap.OpNotifyRegister, fmt.Sprint("com.example.leak", i))
		if i%2 == 0 {
			s.hold.Lock() // a stuck one: its outbox goroutine waits
			held = append(held, s)
		}
		for j := range 50 {
			mustNotify(t, poster, bootstrap.OpNotifyPost, "com.example.leak", bootstrap.KeyNotifyState, uint64(j))
		}
		c.Cancel()
	}
	for _, s := range held {
		s.hold.Unlock()
	}
	waitFor(t, "registrations and goroutines to go", func() bool {
		names, regs := h.d.notes().counts()
		return names <= 1 && regs == 0 && runtime.NumGoroutine() <= before+2
	})
}

// The same rules for a client that is another user's process: the test
// binary, run as a user made for the test, against a root xpcd.
func TestNotifyRightsAsUser(t *testing.T) {
	b, in, h := startRootWithUser(t)
	mine, theirs := fmt.Sprintf("user.uid.%d.x", b.uid), fmt.Sprintf("user.uid.%d.x", isoUserA)
	step := func(id, op, name string) isoStep {
		return isoStep{ID: id, Op: "admin", Req: map[string]any{bootstrap.KeyOp: op, bootstrap.KeyName: name}}
	}
	steps := []isoStep{
		step("post-system", bootstrap.OpNotifyPost, "com.example.sys"),
		step("register-theirs", bootstrap.OpNotifyRegister, theirs),
		step("get-theirs", bootstrap.OpNotifyGet, theirs),
		step("post-theirs", bootstrap.OpNotifyPost, theirs),
		step("post-mine", bootstrap.OpNotifyPost, mine),
		step("register-system", bootstrap.OpNotifyRegister, "com.example.sys"),
	}
	res := isoClient(t, in.exe, b.uid, b.gid, h.dir, steps)
	for id, ok := range map[string]bool{"post-system": false, "register-theirs": false, "get-theirs": false,
		"post-theirs": false, "post-mine": true, "register-system": true} {
		if r := res[id]; r.OK != ok || !ok && r.Reason != bootstrap.ReasonDenied {
			t.Errorf("%s as uid %d: %+v, want ok %v", id, b.uid, r, ok)
		}
	}
	// A system job's grant to the user lets them post it.
	grantJob(t, h, DomainSystem, "test.grant.user", "com.example.sys", fmt.Sprintf("uid %d", b.uid))
	if r := isoClient(t, in.exe, b.uid, b.gid, h.dir, steps[:1])["post-system"]; !r.OK {
		t.Errorf("a granted post as uid %d: %+v", b.uid, r)
	}
}
