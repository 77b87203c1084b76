package xpcd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
)

// End-to-end tests of the pid domain: a bundle in a temporary directory
// whose executables are copies of the test binary. The main executable is
// run by the test as an application (TestHelperAppClient: it looks names
// up when told, on its standard input); each XPC service is the test's
// helper service (helperMain, selected by XPCD_TEST_APPSVC in the
// service's EnvironmentVariables, see TestMain), which checks its
// identifier in and answers ping with its pid.

// appEnvSock is appEnv with the socket of h's xpcd, for "lookup".
func appEnvSock(h *harness, id string) map[string]string {
	env := appEnv(id)
	env["XPCD_APP_SOCK"] = h.paths.Socket
	return env
}

// appEnv is the environment of a test bundle's service named id.
func appEnv(id string) map[string]string {
	return map[string]string{"XPCD_TEST_APPSVC": "1", "XPCD_TEST_NAMES": id}
}

// pingService looks name up at sock and pings it: its pid.
func pingService(ctx context.Context, sock, name string) (int, error) {
	c, err := xpc.NewServiceConnection(name, xpc.WithBootstrapSocket(sock))
	if err != nil {
		return 0, err
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	r, err := c.SendWithReply(ctx, xpc.Dict("cmd", "ping"))
	if err != nil {
		return 0, err
	}
	return intOf(r, "pid"), nil
}

// makeTestBundle makes a bundle of the test binary under dir with the
// services given and returns it, read.
func makeTestBundle(t *testing.T, h *harness, dir, id string, services ...bundletest.ServiceSpec) *bundle.Bundle {
	t.Helper()
	for i := range services {
		if services[i].Environment == nil {
			services[i].Environment = appEnv(services[i].Identifier)
		}
	}
	root := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Exe: h.exe, Services: services})
	b, err := bundle.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testApp is a running application of a test bundle.
type testApp struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	pid int
}

// startApp runs exe (a bundle's main executable: a copy of the test
// binary) as an application that talks to h's xpcd.
func startApp(t testing.TB, h *harness, exe string) *testApp {
	t.Helper()
	return startAppAt(t, h.paths.Socket, exe)
}

// startAppAt runs exe as an application that talks to the xpcd at sock.
func startAppAt(t testing.TB, sock, exe string) *testApp {
	t.Helper()
	return startAppAs(t, sock, exe, nil)
}

// startAppAs is startAppAt with cred, if not nil, as the application's
// identity.
func startAppAs(t testing.TB, sock, exe string, cred *syscall.Credential) *testApp {
	t.Helper()
	return startAppWith(t, sock, exe, cred, nil)
}

// startAppWith is startAppAs with env added to the application's
// environment.
func startAppWith(t testing.TB, sock, exe string, cred *syscall.Credential, env []string) *testApp {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestHelperAppClient$", "-test.count=1")
	cmd.Env = append(os.Environ(), "XPCD_APP_CLIENT=1", "XPCD_APP_SOCK="+sock)
	cmd.Env = append(cmd.Env, env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &testApp{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out), pid: cmd.Process.Pid}
	t.Cleanup(a.exit)
	return a
}

// startNobodyApp makes a test bundle id with an Application service
// appSvc and, unless userSvc is "", a User service userSvc, and runs its
// application as nobody (isoUserA).
func startNobodyApp(t *testing.T, h *harness, id, appSvc, userSvc string) (*bundle.Bundle, *testApp) {
	t.Helper()
	services := []bundletest.ServiceSpec{{Name: "Helper", Identifier: appSvc, Type: bundle.Application}}
	if userSvc != "" {
		services = append(services, bundletest.ServiceSpec{Name: "Shared", Identifier: userSvc, Type: bundle.User})
	}
	b := makeTestBundle(t, h, appsDir(t, h), id, services...)
	return b, startAppAs(t, h.paths.Socket, b.Executable, &syscall.Credential{Uid: isoUserA, Gid: isoUserA, Groups: []uint32{}})
}

// ask sends the application a command and returns its answer.
func (a *testApp) ask(cmd string) string {
	a.t.Helper()
	if _, err := fmt.Fprintln(a.in, cmd); err != nil {
		a.t.Fatalf("app %d: %v", a.pid, err)
	}
	for a.out.Scan() {
		if r, ok := strings.CutPrefix(a.out.Text(), "APP: "); ok {
			return r
		}
	}
	a.t.Fatalf("app %d ended without answering %q", a.pid, cmd)
	return ""
}

// lookup has the application look name up and ping it: the service's pid.
func (a *testApp) lookup(name string) int {
	a.t.Helper()
	r := a.ask("lookup " + name)
	pid, err := strconv.Atoi(strings.TrimPrefix(r, "ok "))
	if err != nil || !strings.HasPrefix(r, "ok ") {
		a.t.Fatalf("app %d: lookup %s: %s", a.pid, name, r)
	}
	return pid
}

// exit ends the application and waits for it.
func (a *testApp) exit() {
	if a.in != nil {
		a.in.Close()
		a.in = nil
		a.cmd.Wait()
	}
}

// TestHelperAppClient is the application of the pid domain's tests: for
// each line "lookup NAME" on its standard input it looks NAME up at
// XPCD_APP_SOCK, pings it, keeps the connection and prints "APP: ok PID",
// or "APP: err KIND: ERROR" (KIND not-in-bundle, not-found, denied or
// other); it exits when its input ends.
func TestHelperAppClient(t *testing.T) {
	if os.Getenv("XPCD_APP_CLIENT") != "1" {
		t.Skip("not a test: the application the pid domain's tests run")
	}
	sock := os.Getenv("XPCD_APP_SOCK")
	var conns []*xpc.Connection
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		name, ok := strings.CutPrefix(in.Text(), "lookup ")
		if in.Text() == "noop" {
			fmt.Println("APP: ok 0")
			continue
		}
		if svc, sib, isSib := strings.Cut(strings.TrimPrefix(in.Text(), "sibling "), " "); isSib && strings.HasPrefix(in.Text(), "sibling ") {
			// Have svc look sib up.
			c, err := xpc.NewServiceConnection(svc, xpc.WithBootstrapSocket(sock))
			if err != nil {
				fmt.Println("APP: err other: " + err.Error())
				continue
			}
			c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
			c.Activate()
			conns = append(conns, c)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			r, err := c.SendWithReply(ctx, xpc.Dict("cmd", "lookup", "name", sib))
			cancel()
			switch {
			case err != nil:
				fmt.Printf("APP: err %s: %v\n", errKind(err), err)
			case r.Get("error") != nil:
				fmt.Printf("APP: err sibling: %s\n", strOf(r, "error"))
			default:
				fmt.Printf("APP: ok %d\n", intOf(r, "pid"))
			}
			continue
		}
		if !ok {
			fmt.Println("APP: err other: unknown command")
			continue
		}
		c, err := xpc.NewServiceConnection(name, xpc.WithBootstrapSocket(sock))
		if err != nil {
			fmt.Println("APP: err other: " + err.Error())
			continue
		}
		c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
		c.Activate()
		conns = append(conns, c)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		r, err := c.SendWithReply(ctx, xpc.Dict("cmd", "ping"))
		cancel()
		if err != nil {
			fmt.Printf("APP: err %s: %v\n", errKind(err), err)
			continue
		}
		fmt.Printf("APP: ok %d\n", intOf(r, "pid"))
	}
	for _, c := range conns {
		c.Cancel()
	}
	os.Exit(0)
}

// errKind names the kind of a lookup's error.
func errKind(err error) string {
	switch {
	case errors.Is(err, xpc.ErrNotInBundle):
		return bootstrap.ReasonNotInBundle
	case errors.Is(err, xpc.ErrServiceNotFound):
		return bootstrap.ReasonNotFound
	case errors.Is(err, xpc.ErrDenied):
		return bootstrap.ReasonDenied
	}
	return "other"
}

// libLookup looks name up from the test process, through the library,
// and pings it.
func libLookup(t *testing.T, h *harness, name string) (int, error) {
	t.Helper()
	c, err := xpc.NewServiceConnection(name, xpc.WithBootstrapSocket(h.paths.Socket))
	if err != nil {
		return 0, err
	}
	c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	c.Activate()
	defer c.Cancel()
	r, err := c.SendWithReply(testCtx(t), xpc.Dict("cmd", "ping"))
	if err != nil {
		return 0, err
	}
	return intOf(r, "pid"), nil
}

// listed returns list's jobs by target (DOMAIN/LABEL).
func listed(h *harness) map[string]*xpc.Dictionary {
	h.t.Helper()
	out := map[string]*xpc.Dictionary{}
	jobs, _ := h.mustAdmin(bootstrap.OpList).Get(bootstrap.KeyJobs).(xpc.Array)
	for _, o := range jobs {
		if d, ok := o.(*xpc.Dictionary); ok {
			out[strOf(d, bootstrap.KeyDomain)+"/"+strOf(d, bootstrap.KeyLabel)] = d
		}
	}
	return out
}

// A bundle's XPC service is launched for the application and found by
// nobody else: the test process, of the same user, is told not-in-bundle
// (errors.Is ErrNotInBundle), and a name no bundle has stays not-found.
// Two applications of the bundle get an instance each of an Application
// service, and share the one instance of a User service.
func TestAppServicesPerApplication(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	const appSvc, userSvc = "org.test.pd.helper", "org.test.pd.shared"
	b := makeTestBundle(t, h, appsDir(t, h), "org.test.pd",
		bundletest.ServiceSpec{Name: "Helper", Identifier: appSvc, Type: bundle.Application},
		bundletest.ServiceSpec{Name: "Shared", Identifier: userSvc, Type: bundle.User})

	app1 := startApp(t, h, b.Executable)
	s1 := app1.lookup(appSvc)
	if _, err := libLookup(t, h, appSvc); !errors.Is(err, xpc.ErrNotInBundle) {
		t.Fatalf("lookup of %s by a process not of its bundle: %v, want ErrNotInBundle", appSvc, err)
	}
	if _, err := libLookup(t, h, "org.test.pd.none"); !errors.Is(err, xpc.ErrServiceNotFound) || errors.Is(err, xpc.ErrNotInBundle) {
		t.Fatalf("lookup of a name no bundle has: %v, want ErrServiceNotFound", err)
	}
	app2 := startApp(t, h, b.Executable)
	s2 := app2.lookup(appSvc)
	if s1 == s2 {
		t.Fatalf("two applications share the Application service's instance (pid %d)", s1)
	}
	if again := app1.lookup(appSvc); again != s1 {
		t.Fatalf("app 1's second lookup: pid %d, want its instance %d", again, s1)
	}
	u1, u2 := app1.lookup(userSvc), app2.lookup(userSvc)
	if u1 != u2 {
		t.Fatalf("User service: pids %d and %d, want one instance", u1, u2)
	}
	jobs := listed(h)
	for _, target := range []string{
		PIDDomain(app1.pid) + "/" + appSvc, PIDDomain(app2.pid) + "/" + appSvc, AppsDomain(0) + "/" + userSvc,
	} {
		if jobs[target] == nil {
			t.Errorf("list has no %s: %v", target, jobs)
		}
	}
	if pid := intOf(jobs[PIDDomain(app1.pid)+"/"+appSvc], bootstrap.KeyPID); pid != s1 {
		t.Errorf("list: pid %d for app 1's instance, want %d", pid, s1)
	}
	// The instances' logs are their user's, one file per service: no
	// directory for each application's pid.
	logs := filepath.Join(h.paths.StateDir, "logs")
	waitFor(t, "the Application service's log", func() bool {
		_, err := os.Stat(filepath.Join(logs, logName(AppsDomain(0)), appSvc+".log"))
		return err == nil
	})
	ents, _ := os.ReadDir(logs)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), logName(pidDomainPrefix)) {
			t.Errorf("a log directory for a pid domain: %s", e.Name())
		}
	}
}

// When the application exits, its Application instance is stopped (stop
// reason app-exited) and its pid domain goes, leaving no descriptor
// open; its User instance stays. Not parallel: it counts descriptors.
func TestAppExitStopsItsInstances(t *testing.T) {
	before := openFDs(t)
	h := newSystemHarness(t)
	d := h.start()
	const appSvc, userSvc = "org.test.px.helper", "org.test.px.shared"
	b := makeTestBundle(t, h, appsDir(t, h), "org.test.px",
		bundletest.ServiceSpec{Name: "Helper", Identifier: appSvc, Type: bundle.Application},
		bundletest.ServiceSpec{Name: "Shared", Identifier: userSvc, Type: bundle.User})
	app := startApp(t, h, b.Executable)
	svc := app.lookup(appSvc)
	shared := app.lookup(userSvc)
	p := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(app.pid))
	if inst, _ := p.Get(bootstrap.KeyInstances).(xpc.Array); len(inst) != 1 {
		t.Fatalf("print %s: instances %v, want 1", PIDDomain(app.pid), xpc.Format(p))
	}
	app.exit()
	waitFor(t, "the application's instance to go", func() bool {
		_, ok := listed(h)[PIDDomain(app.pid)+"/"+appSvc]
		return !ok
	})
	if err := processGone(svc); err != nil {
		t.Errorf("the Application instance: %v", err)
	}
	if !strings.Contains(h.logs.String(), "stop_reason="+stopAppExited) {
		t.Errorf("no stop with reason %s in the log", stopAppExited)
	}
	if j := listed(h)[AppsDomain(0)+"/"+userSvc]; intOf(j, bootstrap.KeyPID) != shared {
		t.Errorf("the User instance after the application exited: %v, want pid %d running", j, shared)
	}
	h.close(d) // stops the User instance
	deadline := time.Now().Add(5 * time.Second)
	for {
		var leaked []string
		for fd, target := range openFDs(t) {
			if before[fd] != target {
				leaked = append(leaked, strconv.Itoa(fd)+" -> "+target)
			}
		}
		if len(leaked) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors left open: %v", leaked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone waits a little for pid to be gone (reaped).
func processGone(pid int) error {
	for range 250 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("pid %d still runs", pid)
}

// print pid/PID shows a bundle application's bundle, identity, services
// and instances; a plain process's pid domain is empty; another user may
// not print it (rule pid-domain-access).
func TestPrintPIDDomain(t *testing.T) {
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.start()
	const appSvc, userSvc = "org.test.pp.helper", "org.test.pp.shared"
	b := makeTestBundle(t, h, appsDir(t, h), "org.test.pp",
		bundletest.ServiceSpec{Name: "Helper", Identifier: appSvc, Type: bundle.Application},
		bundletest.ServiceSpec{Name: "Shared", Identifier: userSvc, Type: bundle.User})
	app := startApp(t, h, b.Executable)
	svc := app.lookup(appSvc)
	p := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(app.pid))
	if strOf(p, bootstrap.KeyBundle) != b.Root || strOf(p, bootstrap.KeyBundleID) != "org.test.pp" ||
		strOf(p, bootstrap.KeyBundleIdentity) != "org.test.pp" || strOf(p, bootstrap.KeyDomain) != PIDDomain(app.pid) {
		t.Errorf("print %s: %s", PIDDomain(app.pid), xpc.Format(p))
	}
	services, _ := p.Get(bootstrap.KeyServices).(xpc.Array)
	types := map[string]string{}
	for _, o := range services {
		d := o.(*xpc.Dictionary)
		types[strOf(d, bootstrap.KeyName)] = strOf(d, bootstrap.KeyServiceType)
		if strOf(d, bootstrap.KeyName) == appSvc && intOf(d, bootstrap.KeyPID) != svc {
			t.Errorf("print: %s: pid %d, want %d", appSvc, intOf(d, bootstrap.KeyPID), svc)
		}
	}
	if types[appSvc] != "Application" || types[userSvc] != "User" {
		t.Errorf("print: services %v", types)
	}
	inst, _ := p.Get(bootstrap.KeyInstances).(xpc.Array)
	if len(inst) != 1 || intOf(inst[0].(*xpc.Dictionary), bootstrap.KeyPID) != svc {
		t.Errorf("print: instances %v, want %s at pid %d", inst, appSvc, svc)
	}
	// The test process: no bundle, no services.
	own := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(os.Getpid()))
	if own.Get(bootstrap.KeyBundle) != nil || len(own.Get(bootstrap.KeyServices).(xpc.Array)) != 0 {
		t.Errorf("print of a plain process's pid domain: %s", xpc.Format(own))
	}
	// The job itself, by its target, with its process's user and numbers,
	// as print of any other running job shows them (User:, Memory:, CPU:).
	if j := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(app.pid)+"/"+appSvc); intOf(j, bootstrap.KeyPID) != svc ||
		j.Get("uid") == nil || intOf(j, "uid") != os.Getuid() || j.Get("rss_bytes") == nil || j.Get("threads") == nil {
		t.Errorf("print of the instance's job: %s", xpc.Format(j))
	}
	// A pid domain is not a domain to change.
	if _, err := h.admin(bootstrap.OpBootout, bootstrap.KeyTarget, PIDDomain(app.pid)+"/"+appSvc); err == nil ||
		!strings.Contains(err.Error(), "pid or apps domain") {
		t.Errorf("bootout in a pid domain: %v", err)
	}
	// nobody may not print root's application's pid domain.
	res := isoClient(t, in.exe, isoUserA, isoUserA, h.dir, []isoStep{
		{ID: "p", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpPrint, bootstrap.KeyTarget: PIDDomain(app.pid)}},
	})
	if r := res["p"]; r.OK || !strings.Contains(r.Error, bootstrap.RulePIDDomainAccess) {
		t.Errorf("nobody's print of root's pid domain: %+v, want refused by %s", r, bootstrap.RulePIDDomainAccess)
	}
	if _, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, "pid/999999999"); reasonOf(err) != bootstrap.ReasonNotFound {
		t.Errorf("print of no process: %v", err)
	}
	for _, bad := range []string{"pid/", "pid/abc", "pid/0", "pid/-1", "pid/01", "pid/1x", "apps/", "apps/x", "apps/01", "apps/-1",
		"pid/99999999999999999999", "apps/4294967296"} {
		if _, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, bad); reasonOf(err) != bootstrap.ReasonBadRequest {
			t.Errorf("print %q: %v, want bad-request", bad, err)
		}
	}
	for _, none := range []string{"apps/12345", "apps/system", "apps/0/org.none", "pid/1/org.none"} {
		if _, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, none); reasonOf(err) != bootstrap.ReasonNotFound {
			t.Errorf("print %q: %v, want not-found", none, err)
		}
	}
}

// A System service runs only from a bundle root alone can change: from a
// directory anyone may write, its lookup is refused by rule bundle-trust,
// and nothing is launched.
func TestAppSystemServiceUntrusted(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	const sysSvc = "org.test.ps.daemon"
	b := makeTestBundle(t, h, dir, "org.test.ps",
		bundletest.ServiceSpec{Name: "Daemon", Identifier: sysSvc, Type: bundle.System})
	app := startApp(t, h, b.Executable)
	r := app.ask("lookup " + sysSvc)
	if !strings.HasPrefix(r, "err "+bootstrap.ReasonDenied) || !strings.Contains(r, bootstrap.RuleBundleTrust) {
		t.Fatalf("lookup of a System service from an untrusted path: %s, want denied by %s", r, bootstrap.RuleBundleTrust)
	}
	if d := listed(h)[DomainAppsSystem+"/"+sysSvc]; d != nil {
		t.Errorf("a job was made: %s", xpc.Format(d))
	}
}

// From a root-owned path a System service runs, once for the machine, as
// the configured unprivileged user (nobody), never as root.
func TestAppSystemServiceRunsAsNobody(t *testing.T) {
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.start()
	const sysSvc = "org.test.pn.daemon"
	b := makeTestBundle(t, h, appsDir(t, h), "org.test.pn",
		bundletest.ServiceSpec{Name: "Daemon", Identifier: sysSvc, Type: bundle.System})
	app1, app2 := startApp(t, h, b.Executable), startApp(t, h, b.Executable)
	p1, p2 := app1.lookup(sysSvc), app2.lookup(sysSvc)
	if p1 != p2 {
		t.Errorf("System service: pids %d and %d, want one instance", p1, p2)
	}
	d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, DomainAppsSystem+"/"+sysSvc)
	st, err := os.Stat("/proc/" + strconv.Itoa(p1))
	if err != nil {
		t.Fatal(err)
	}
	if uid := statUID(st); uid != isoUserA {
		t.Errorf("the System service runs as uid %d, want %d (nobody): %s", uid, isoUserA, xpc.Format(d))
	}
	// Every user reads apps/system; only root signals its jobs.
	res := isoClient(t, in.exe, 4242, 4242, h.dir, []isoStep{
		{ID: "kill", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpKill, bootstrap.KeyTarget: DomainAppsSystem + "/" + sysSvc}},
	})
	if r := res["kill"]; r.OK || r.Reason != bootstrap.ReasonDenied || !strings.Contains(r.Error, bootstrap.RuleDomainAccess) {
		t.Errorf("a user's kill of %s/%s: %+v, want denied by %s", DomainAppsSystem, sysSvc, res["kill"], bootstrap.RuleDomainAccess)
	}
	if !runs(p1) {
		t.Errorf("the System service is gone after a user's kill")
	}
	if r := h.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, DomainAppsSystem+"/"+sysSvc); strOf(r, bootstrap.KeyStatus) != "signaled" {
		t.Errorf("root's kill of %s/%s: %s", DomainAppsSystem, sysSvc, xpc.Format(r))
	}
}

// statUID is the owner of what st describes.
func statUID(st os.FileInfo) uint32 { return st.Sys().(*syscall.Stat_t).Uid }

// An XPC service looking up a sibling service of its bundle counts as the
// application it was launched for: app 1's helper reaches app 1's
// instance of the sibling, not a new one, and app 2 gets its own.
func TestAppServiceSibling(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.start()
	const a, b = "org.test.sib.a", "org.test.sib.b"
	bd := makeTestBundle(t, h, appsDir(t, h), "org.test.sib",
		bundletest.ServiceSpec{Name: "A", Identifier: a, Environment: appEnvSock(h, a)},
		bundletest.ServiceSpec{Name: "B", Identifier: b, Environment: appEnvSock(h, b)})
	app1, app2 := startApp(t, h, bd.Executable), startApp(t, h, bd.Executable)
	r := app1.ask("sibling " + a + " " + b)
	viaA, err := strconv.Atoi(strings.TrimPrefix(r, "ok "))
	if err != nil {
		t.Fatalf("app 1's %s looking up %s: %s", a, b, r)
	}
	if direct := app1.lookup(b); direct != viaA {
		t.Errorf("app 1's own lookup of %s: pid %d, its %s's: %d; want one instance", b, direct, a, viaA)
	}
	if other := app2.lookup(b); other == viaA {
		t.Errorf("app 2 got app 1's instance of %s (pid %d)", b, other)
	}
	if jobs := listed(h); jobs[PIDDomain(app1.pid)+"/"+b] == nil || jobs[PIDDomain(app2.pid)+"/"+b] == nil {
		t.Errorf("list: %v", jobs)
	}
}

// An application of another user (nobody) gets its instances run as that
// user, Application and User alike, never as root; it may print its own
// pid domain; and root's processes are not told not-in-bundle of its
// bundle's names (another user's bundles stay unseen).
func TestAppServicesRunAsTheUser(t *testing.T) {
	t.Parallel()
	in := newIsoInstance(t)
	h := in.h
	h.start()
	const appSvc, userSvc = "org.test.pu.helper", "org.test.pu.shared"
	_, app := startNobodyApp(t, h, "org.test.pu", appSvc, userSvc)
	for _, name := range []string{appSvc, userSvc} {
		pid := app.lookup(name)
		st, err := os.Stat("/proc/" + strconv.Itoa(pid))
		if err != nil {
			t.Fatal(err)
		}
		if uid := statUID(st); uid != isoUserA {
			t.Errorf("%s runs as uid %d, want %d", name, uid, isoUserA)
		}
	}
	jobs := listed(h)
	if jobs[PIDDomain(app.pid)+"/"+appSvc] == nil || jobs[AppsDomain(isoUserA)+"/"+userSvc] == nil {
		t.Errorf("list: %v", jobs)
	}
	if _, err := libLookup(t, h, appSvc); !errors.Is(err, xpc.ErrServiceNotFound) || errors.Is(err, xpc.ErrNotInBundle) {
		t.Errorf("root's lookup of another user's bundle's service: %v, want not found", err)
	}
	res := isoClient(t, in.exe, isoUserA, isoUserA, h.dir, []isoStep{
		{ID: "p", Op: "admin", Req: map[string]any{bootstrap.KeyOp: bootstrap.OpPrint, bootstrap.KeyTarget: PIDDomain(app.pid)}},
	})
	if r := res["p"]; !r.OK {
		t.Errorf("nobody's print of its own application's pid domain: %+v", r)
	}
}

// An instance running when xpcd stops (leaving services running) cannot
// be adopted by the next xpcd, its application's pid domain being gone:
// the next xpcd stops it at start, and a new lookup starts a new one.
func TestAppServiceOrphanStoppedAtRestart(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	h.cfg.StopServicesOnClose = false
	d := h.start()
	const appSvc = "org.test.po.helper"
	b := makeTestBundle(t, h, appsDir(t, h), "org.test.po",
		bundletest.ServiceSpec{Name: "Helper", Identifier: appSvc, Type: bundle.Application})
	app := startApp(t, h, b.Executable)
	first := app.lookup(appSvc)
	h.close(d)
	h.start()
	// Sooner than the helper gives up its re-adoption (10 s) by itself.
	for deadline := time.Now().Add(3 * time.Second); runs(first); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the orphan instance (pid %d) still runs", first)
		}
	}
	if again := app.lookup(appSvc); again == first {
		t.Errorf("the same instance after the restart (pid %d)", again)
	}
}

// runs reports whether pid is a process that has not ended (a zombie has).
func runs(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// print pid/PID names a signed bundle's identity, team included, as
// xpcd's trust directory verifies its main executable's signature; a
// signature for another identifier is reported, not taken.
func TestPrintPIDDomainSigned(t *testing.T) {
	t.Parallel()
	h := newSystemHarness(t)
	signer := bundletest.NewSigner(t)
	trust := filepath.Join(h.paths.Root, "trust.d")
	if err := os.MkdirAll(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(signer.TrustDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		copyFile(t, filepath.Join(signer.TrustDir, e.Name()), filepath.Join(trust, e.Name()))
		os.Chmod(filepath.Join(trust, e.Name()), 0o644)
	}
	h.start()
	dir := appsDir(t, h)
	good := makeTestBundle(t, h, dir, "org.test.ps1", bundletest.ServiceSpec{Name: "Helper", Identifier: "org.test.ps1.helper"})
	signer.Sign(t, good.Executable, "org.test.ps1", "TEAM1")
	bad := makeTestBundle(t, h, dir, "org.test.ps2", bundletest.ServiceSpec{Name: "Helper", Identifier: "org.test.ps2.helper"})
	signer.Sign(t, bad.Executable, "org.test.other", "TEAM1")
	app := startApp(t, h, good.Executable)
	p := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(app.pid))
	if s := strOf(p, bootstrap.KeyBundleIdentity); s != "org.test.ps1 (team TEAM1)" || p.Get(bootstrap.KeyBundleSigned) != xpc.Bool(true) {
		t.Errorf("print of a signed bundle's application: %s", xpc.Format(p))
	}
	other := startApp(t, h, bad.Executable)
	p = h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, PIDDomain(other.pid))
	if strOf(p, bootstrap.KeyBundleError) == "" || p.Get(bootstrap.KeyBundleIdentity) != nil {
		t.Errorf("print of a bundle signed for another identifier: %s", xpc.Format(p))
	}
}

// An application that runs from where its bundle was moved to takes its
// user's registrations of it along (bundleSeen, called when the pid
// domain finds the bundle): no register from the new path is needed.
func TestAppRunFromMovedBundleMovesItsRegistration(t *testing.T) {
	h := newSystemHarness(t)
	h.start()
	dir := appsDir(t, h)
	const id = "org.test.runmoved"
	agent := id + ".agent"
	a := bundletest.Make(t, dir, bundletest.Spec{Identifier: id, Exe: h.exe, Agents: []bundletest.PlistSpec{{Label: agent}}})
	u := newAppClient(t, h, regUser, regUser)
	u.must(bootstrap.OpAppRegister, a, bootstrap.AppKindAgent, agent+".plist")
	moved := filepath.Join(dir, "Moved.app")
	if err := os.Rename(a, moved); err != nil {
		t.Fatal(err)
	}
	if regs := listRegs(t, u, false); len(regs) != 1 || strOf(regs[0], bootstrap.KeyAppBundle) != a {
		t.Fatalf("before the application runs: %v", regs)
	}
	b, err := bundle.Read(moved)
	if err != nil {
		t.Fatal(err)
	}
	app := startAppAs(t, h.paths.Socket, b.Executable, &syscall.Credential{Uid: regUser, Gid: regUser, Groups: []uint32{}})
	app.ask("lookup org.test.runmoved.nosuch")
	waitFor(t, "the registration to follow the running application", func() bool {
		regs := listRegs(t, u, false)
		return len(regs) == 1 && strOf(regs[0], bootstrap.KeyAppBundle) == moved
	})
	waitFor(t, "the agent's job to take the new program", func() bool {
		r, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, UserDomain(regUser)+"/"+agent)
		return err == nil && strOf(r, "program") == filepath.Join(moved, "app")
	})
}
