package xpcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// reqJob is a lifecycle job whose names have the requirements given
// (name -> requirement, "" for none).
func (h *harness) reqJob(label string, names map[string]string, program string) testJob {
	ms := map[string]any{}
	var list []string
	for n, r := range names {
		list = append(list, n)
		if r == "" {
			ms[n] = true
		} else {
			ms[n] = map[string]any{"Requirement": r}
		}
	}
	return h.lcJob(label, list, nil, map[string]any{"MachServices": ms}, program)
}

// connectOnce looks name up through the library and pings the service.
func connectOnce(t *testing.T, name string, opts ...xpc.Option) (*xpc.Dictionary, error) {
	t.Helper()
	c, err := xpc.NewServiceConnection(name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	return c.SendWithReply(testCtx(t), xpc.Dict("cmd", "ping"))
}

// A name's Requirement is checked by xpcd on the process that looks it up:
// one that meets it reaches the service; one that does not is refused
// before the service is launched, with ErrInvalid and ErrPeerRequirement,
// the failing clause and the identity checked in the reason, whichever way
// the lookup is made (pipelined, through a shared Bootstrap, or as a
// request). print shows each name's requirement.
func TestLookupRequirement(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	uid := os.Geteuid()
	pass, fail := fmt.Sprintf("uid %d", uid), fmt.Sprintf("uid %d", uid+1)
	h.writePlist(h.reqJob("test.req.ok", map[string]string{"test.req.ok.svc": pass}, ""))
	h.writePlist(h.reqJob("test.req.no", map[string]string{"test.req.no.svc": fail}, ""))
	h.start()
	sock := xpc.WithBootstrapSocket(h.paths.Socket)

	if _, err := connectOnce(t, "test.req.ok.svc", sock); err != nil {
		t.Fatalf("a client that meets the requirement: %v", err)
	}
	b, err := xpc.NewBootstrap(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, opts := range [][]xpc.Option{{sock}, {xpc.WithBootstrap(b)}} {
		_, err := connectOnce(t, "test.req.no.svc", opts...)
		var ce *xpc.ConnError
		if !errors.Is(err, xpc.ErrInvalid) || !errors.Is(err, xpc.ErrPeerRequirement) || errors.Is(err, xpc.ErrDenied) ||
			errors.Is(err, xpc.ErrServiceNotFound) || !errors.As(err, &ce) {
			t.Fatalf("a client that fails the requirement: %v", err)
		}
		r := ce.Reason
		if r.Code != xpc.ReasonRequirementFailed || r.Rule != fail ||
			!strings.Contains(r.Peer, fmt.Sprintf("pid %d uid %d", os.Getpid(), uid)) ||
			!strings.Contains(r.Description, "test.req.no.svc") || !strings.Contains(r.Description, fail) {
			t.Errorf("the reason: %+v", r)
		}
	}
	_, err = h.lookup("test.req.no.svc")
	var re *xpc.RemoteError
	if !errors.As(err, &re) || reasonOf(err) != bootstrap.ReasonRequirementFailed {
		t.Fatalf("a lookup request that fails the requirement: %v", err)
	}
	if rule, _ := re.Object.String(bootstrap.KeyRule); rule != fail {
		t.Errorf("the refusal names clause %q", rule)
	}
	if peer, _ := re.Object.String(bootstrap.KeyPeer); !strings.Contains(peer, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("the refusal names peer %q", peer)
	}
	if c, err := h.lookup("test.req.ok.svc"); err != nil {
		t.Errorf("a lookup request that meets the requirement: %v", err)
	} else {
		ping(t, c)
	}

	// The clause named is the one that failed, of a requirement of
	// several.
	exeOK, exeNo := pass+" and exe "+h.exe, pass+" and exe /nonexistent/helper"
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyPath, h.writePlist(h.reqJob("test.req.exe",
		map[string]string{"test.req.exe.ok": exeOK, "test.req.exe.no": exeNo}, "")))
	if _, err := connectOnce(t, "test.req.exe.ok", sock); err != nil {
		t.Errorf("a client that meets %q: %v", exeOK, err)
	}
	_, err = connectOnce(t, "test.req.exe.no", sock)
	var ce *xpc.ConnError
	if !errors.Is(err, xpc.ErrPeerRequirement) || !errors.As(err, &ce) || ce.Reason.Rule != "exe /nonexistent/helper" ||
		!strings.Contains(ce.Reason.Description, exeNo) {
		t.Errorf("a client that fails %q: %v", exeNo, err)
	}

	// Nobody who failed it started the service.
	d := h.print("test.req.no")
	if strOf(d, "state") != "waiting" || intOf(d, "runs") != 0 {
		t.Errorf("the job only refused clients looked up: %s", xpc.Format(d))
	}
	reqs, _ := d.Get("requirements").(*xpc.Dictionary)
	if reqs == nil || strOf(reqs, "test.req.no.svc") != fail {
		t.Errorf("print shows requirements %v", d.Get("requirements"))
	}
	// blame says who may look it up, and whether the caller may.
	why := strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.req.no")), bootstrap.KeyWhy)
	if !strings.Contains(why, "test.req.no.svc") || !strings.Contains(why, fail) || !strings.Contains(why, "refused") {
		t.Errorf("blame: %s", why)
	}
	why = strOf(h.mustAdmin(bootstrap.OpBlame, bootstrap.KeyTarget, h.target("test.req.ok")), bootstrap.KeyWhy)
	if !strings.Contains(why, pass) || strings.Contains(why, "refused") {
		t.Errorf("blame of a job whose requirement the caller meets: %s", why)
	}
}

// A name found in another domain than the one asked, which the caller may
// see, is ErrOtherDomain, naming that domain and how to reach it; root is
// told of a user's agent it asked for without a domain, which no other
// user is.
func TestLookupOtherDomain(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to look up in another user's domain")
	}
	t.Parallel()
	h := newSystemHarness(t)
	h.writePlist(h.lcJob("test.od.sys", []string{"test.od.sys.svc"}, nil, nil, ""), h.paths.Daemons)
	h.start()
	const other = 4242
	dom := UserDomain(other)
	extra := filepath.Join(h.dir, "extra")
	os.Mkdir(extra, 0o755)
	p := h.writePlist(testJob{label: "test.od.agent", names: []string{"test.od.agent.svc"},
		extra: map[string]any{"ProgramArguments": []any{"/bin/sleep", "60"}}}, extra)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, dom, bootstrap.KeyPath, p)
	sock := xpc.WithBootstrapSocket(h.paths.Socket)

	for _, tc := range []struct {
		name, domain, in string
	}{
		{"test.od.sys.svc", UserDomain(0), DomainSystem},
		{"test.od.agent.svc", DomainSystem, dom},
		{"test.od.agent.svc", "", dom},
	} {
		opts := []xpc.Option{sock}
		if tc.domain != "" {
			opts = append(opts, xpc.WithDomain(tc.domain))
		}
		_, err := connectOnce(t, tc.name, opts...)
		var ce *xpc.ConnError
		if !errors.Is(err, xpc.ErrInvalid) || !errors.Is(err, xpc.ErrOtherDomain) || errors.Is(err, xpc.ErrServiceNotFound) || !errors.As(err, &ce) {
			t.Fatalf("%s in %q: %v, want ErrOtherDomain", tc.name, tc.domain, err)
		}
		if ce.Reason.Domain != tc.in || !strings.Contains(ce.Reason.Description, "WithDomain("+tc.in+")") {
			t.Errorf("%s in %q: %+v, want it named in %s", tc.name, tc.domain, ce.Reason, tc.in)
		}
	}
	if _, err := connectOnce(t, "test.od.sys.svc", sock, xpc.WithDomain(DomainSystem)); err != nil {
		t.Errorf("in the domain it is in: %v", err)
	}
	if _, err := connectOnce(t, "test.od.nowhere", sock); !errors.Is(err, xpc.ErrServiceNotFound) || errors.Is(err, xpc.ErrOtherDomain) {
		t.Errorf("a name nobody has: %v", err)
	}
}

// Across users: a system daemon is anyone's unless its name has a
// requirement; another user's domain is its user's and root's; a name in
// another user's domain is not found (not revealed) for a user who did not
// name the domain, and denied (rule domain-access) for one who did; a
// system daemon asked for in the caller's own domain is ErrOtherDomain.
// Each refusal is told apart by errors.Is in the client, which runs as
// another user.
func TestLookupPolicyAcrossUsers(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.writePlist(h.reqJob("test.pol.sys", map[string]string{"test.pol.open.svc": "", "test.pol.root.svc": "uid 0"}, in.exe), h.paths.Daemons)
	h.start()
	extra := filepath.Join(h.dir, "extra")
	os.Mkdir(extra, 0o755)
	aDom := UserDomain(isoUserA)
	p := h.writePlist(h.lcJob("test.pol.a", []string{"test.pol.a.svc"}, nil, nil, in.exe), extra)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, aDom, bootstrap.KeyPath, p)

	res := polClient(t, in.exe, b.uid, b.gid, h.dir, nil, []polStep{
		{ID: "open", Op: "lookup", Name: "test.pol.open.svc"},
		{ID: "root-only", Op: "lookup", Name: "test.pol.root.svc"},
		{ID: "a", Op: "lookup", Name: "test.pol.a.svc"},
		{ID: "a-in-a", Op: "lookup", Name: "test.pol.a.svc", Domain: aDom},
		{ID: "open-in-own", Op: "lookup", Name: "test.pol.open.svc", Domain: UserDomain(b.uid)},
		{ID: "nowhere", Op: "lookup", Name: "test.pol.nowhere"},
	})
	if r := res["open"]; !r.OK || r.PeerUID != int(b.uid) {
		t.Errorf("B's lookup of a system daemon: %+v", r)
	}
	if r := res["root-only"]; !r.is("invalid", "requirement") || r.Code != xpc.ReasonRequirementFailed || r.Rule != "uid 0" ||
		!strings.Contains(r.Peer, fmt.Sprintf("pid %d uid %d", r.PID, b.uid)) {
		t.Errorf("B's lookup of a name that requires uid 0: %+v", r)
	}
	if r := res["a"]; !r.is("invalid", "not-found") || strings.Contains(r.Error, aDom) {
		t.Errorf("B's lookup of A's agent's name: %+v, want not found, A's domain not named", r)
	}
	if r := res["a-in-a"]; !r.is("invalid", "denied") || r.Code != xpc.ReasonDenied || r.Rule != bootstrap.RuleDomainAccess {
		t.Errorf("B's lookup in A's domain: %+v", r)
	}
	if r := res["open-in-own"]; !r.is("invalid", "other-domain") || r.Domain != DomainSystem ||
		!strings.Contains(r.Desc, "test.pol.open.svc is a system daemon") || !strings.Contains(r.Desc, "WithDomain(system)") {
		t.Errorf("B's lookup of a system daemon in B's domain: %+v", r)
	}
	if r := res["nowhere"]; !r.is("invalid", "not-found") {
		t.Errorf("B's lookup of a name nobody has: %+v", r)
	}

	// Root meets uid 0, and may use A's domain.
	if _, err := connectOnce(t, "test.pol.root.svc", xpc.WithBootstrapSocket(h.paths.Socket)); err != nil {
		t.Errorf("root's lookup of a name that requires uid 0: %v", err)
	}
	if _, err := connectOnce(t, "test.pol.a.svc", xpc.WithBootstrapSocket(h.paths.Socket), xpc.WithDomain(aDom)); err != nil {
		t.Errorf("root's lookup in A's domain: %v", err)
	}
}

// A process presenting a socket another process made is refused (rule
// socket-creator), whatever its uid, and even if it runs xpcd's own
// executable (an xpcd may pass on only its own user's clients): the
// service would take it for the maker. Its own socket, made by the
// library, it may present.
func TestLookupSocketCreator(t *testing.T) {
	b := newTestUser(t)
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.writePlist(h.lcJob("test.sc", []string{"test.sc.svc"}, nil, nil, in.exe), h.paths.Daemons)
	h.start()
	clients := []struct {
		who      string
		exe      string
		uid, gid uint32
	}{
		{"user B", in.exe, b.uid, b.gid},
		{"another root process", in.exe, 0, 0},
	}
	// xpcd's own executable (the test binary), where another user may
	// run it: a link to the same file.
	if own := filepath.Join(in.bin, "xpcd.test.link"); os.Link(h.exe, own) == nil {
		clients = append(clients, struct {
			who      string
			exe      string
			uid, gid uint32
		}{"user B running xpcd's executable", own, b.uid, b.gid})
	} else {
		t.Log("the test binary cannot be linked where user B may run it: that case is left out")
	}

	for _, c := range clients {
		// A socket pair made here, by root; the client gets one end.
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		mine, theirs := os.NewFile(uintptr(fds[0]), "mine"), os.NewFile(uintptr(fds[1]), "theirs")
		res := polClient(t, c.exe, c.uid, c.gid, h.dir, theirs, []polStep{
			{ID: "present", Op: "present", Name: "test.sc.svc"},
			{ID: "own", Op: "lookup", Name: "test.sc.svc"},
		})
		theirs.Close()
		if r := res["present"]; r.OK || r.Code != bootstrap.ReasonDenied || r.Rule != bootstrap.RuleSocketCreator ||
			!strings.Contains(r.Desc, fmt.Sprintf("made by pid %d uid 0", os.Getpid())) {
			t.Errorf("%s presenting root's socket: %+v", c.who, r)
		}
		if r := res["own"]; !r.OK || r.PeerUID != int(c.uid) {
			t.Errorf("%s with its own socket: %+v", c.who, r)
		}
		// No service got root's socket: every other end is closed.
		if n, err := unix.Poll([]unix.PollFd{{Fd: int32(fds[0]), Events: unix.POLLIN}}, int(testTimeout/time.Millisecond)); n != 1 || err != nil {
			t.Fatalf("%s: root's end: poll %d %v", c.who, n, err)
		}
		if n, err := mine.Read(make([]byte, 64)); n != 0 || err != io.EOF {
			t.Errorf("%s: root's end reads %d bytes (%v): a service has the other end", c.who, n, err)
		}
		mine.Close()
	}
}

// readMaker tells the process that made a socket from another by its
// pidfd's identity on pidfs, not by the pid alone, and so does
// lookupClient: a requester of the maker's pid but another identity (a
// process that got the pid later) may not present the socket.
func TestReadMaker(t *testing.T) {
	if !onPIDFS() {
		t.Skip("skipped: pidfds are not on pidfs here (Linux before 6.9)")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	p, err := xpc.PeerOfSocket(a)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	id := pidfdID(p, true)
	mk, same, _, err := readMaker(a, id, true)
	if err != nil || !same || mk.pid != os.Getpid() || mk.uid != uint32(os.Geteuid()) {
		t.Errorf("readMaker with this process's identity %d: %+v same %v %v", id, mk, same, err)
	}
	if mk, same, alive, err := readMaker(a, id+1, true); err != nil || same || !alive || mk.pid != os.Getpid() {
		t.Errorf("readMaker with another process's identity: %+v same %v alive %v %v", mk, same, alive, err)
	}
	ss := &session{s: &server{pidfs: true, exe: ownExecutable()}, peer: p, pidfdID: id}
	if _, oe := ss.lookupClient("test.x", xpc.NewFD(a)); oe != nil {
		t.Errorf("lookupClient, the maker asking: %v", oe)
	}
	ss.pidfdID = id + 1
	if _, oe := ss.lookupClient("test.x", xpc.NewFD(a)); oe == nil || oe.reason != bootstrap.ReasonDenied {
		t.Errorf("lookupClient, another process of the maker's pid asking: %v", oe)
	}
}

// The policy judges the socket's maker, whom the service sees, not the
// credentials the bootstrap connection was made with: a process that
// connected to xpcd with another uid (on one thread) and made the socket
// as root looks up, and is served, as root: it finds root's agent, and
// meets its requirement.
func TestLookupJudgesTheMaker(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to connect as another uid")
	}
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	// In root's own domain, which uid 4242 does not see.
	extra := filepath.Join(h.dir, "extra")
	os.Mkdir(extra, 0o755)
	p := h.writePlist(h.reqJob("test.jm", map[string]string{"test.jm.svc": "uid 0"}, ""), extra)
	h.mustAdmin(bootstrap.OpBootstrap, bootstrap.KeyDomain, UserDomain(0), bootstrap.KeyPath, p)
	c := dialAs(t, h, 4242)
	mine, err := lookupOn(t, c, "test.jm.svc")
	if err != nil {
		t.Fatalf("a lookup of a name that requires uid 0, on a connection of uid 4242, with a socket root made: %v", err)
	}
	sc, err := xpc.NewConnectionFromFile(mine)
	if err != nil {
		t.Fatal(err)
	}
	sc.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	sc.Activate()
	defer sc.Cancel()
	if r, err := call(t, sc, "ping"); err != nil || intOf(r, "peer_uid") != 0 {
		t.Errorf("the service saw %v %v, want uid 0", r, err)
	}
}
