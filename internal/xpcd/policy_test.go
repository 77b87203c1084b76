package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// The policy seen from another user: the test binary, re-executed as
// nobody, is the client (TestHelperClient).
func TestPolicyOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	t.Parallel()
	h := newHarness(t)
	h.paths = bootstrap.ForRoot(h.dir, false) // the system layout: socket 0666
	h.cfg.Paths = h.paths
	os.Chmod(h.dir, 0o755)
	os.MkdirAll(h.paths.Daemons, 0o755)
	bin := filepath.Join(h.dir, "bin")
	os.Mkdir(bin, 0o755)
	client := filepath.Join(bin, "client")
	copyFile(t, h.exe, client)
	h.writePlist(testJob{label: "test.sys", names: []string{"test.sys.svc"}}, h.paths.Daemons)
	// An agent: loaded into root's domain at start (this instance runs as
	// root under XPCD_ROOT), and into nobody's when nobody first comes.
	h.writePlist(testJob{label: "test.usr", names: []string{"test.usr.svc"}, program: client})
	h.start()

	run := func(script string) map[string]string {
		t.Helper()
		cmd := exec.Command(client, "-test.run=^TestHelperClient$")
		cmd.Env = append(os.Environ(), "XPCD_TEST_CLIENT="+script, bootstrap.RootEnv+"="+h.dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client: %v\n%s", err, out)
		}
		res := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "R:") {
				res[k[2:]] = v
			}
		}
		return res
	}
	res := run("lookup:test.sys.svc lookup:test.usr.svc lookup:test.usr.svc:user/0 disable:system/test.sys disable:user/0/test.usr disable:user/65534/test.usr list")
	want := map[string]string{
		"lookup:test.sys.svc":         "ok pong uid 0",
		"lookup:test.usr.svc":         "ok pong uid 65534", // its own instance of the agent
		"lookup:test.usr.svc:user/0":  bootstrap.ReasonDenied,
		"disable:system/test.sys":     bootstrap.ReasonDenied,
		"disable:user/0/test.usr":     bootstrap.ReasonDenied,
		"disable:user/65534/test.usr": "ok",
		"list":                        "ok system/test.sys,user/65534/test.usr",
	}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("%s as uid 65534: %q, want %q", k, res[k], v)
		}
	}
	d := h.mustAdmin(bootstrap.OpPrint, bootstrap.KeyTarget, "user/65534/test.usr")
	if st := strOf(d, "state"); st != "running" || d.Get("disabled") != xpc.Bool(true) {
		t.Errorf("nobody's agent, seen by root: %s", xpc.Format(d))
	}

	// A --user instance's socket is the owner's alone.
	hu := newHarness(t)
	os.Chmod(hu.dir, 0o755)
	hu.start()
	os.Chmod(hu.paths.RunDir, 0o755) // so that only the socket's own mode stands in the way
	h.dir = hu.dir
	res = run("list")
	if !strings.Contains(res["list"], "permission denied") {
		t.Errorf("connecting to a --user instance as another user: %q", res["list"])
	}
}

// TestHelperClient is the client TestPolicyOtherUser runs as another user.
// It prints one "R:STEP=RESULT" line per step.
func TestHelperClient(t *testing.T) {
	script := os.Getenv("XPCD_TEST_CLIENT")
	if script == "" {
		t.Skip("not a test: the client TestPolicyOtherUser runs")
	}
	sock := bootstrap.ForRoot(os.Getenv(bootstrap.RootEnv), false).Socket
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	result := func(err error) string {
		var re *xpc.RemoteError
		if errors.As(err, &re) {
			r, _ := re.Object.Get(bootstrap.KeyReason).(xpc.String)
			return string(r)
		}
		return "error " + err.Error()
	}
	for _, step := range strings.Fields(script) {
		parts := strings.Split(step, ":")
		var out string
		bc, err := xpc.DialUnix(ctx, sock)
		if err != nil {
			fmt.Printf("R:%s=%s\n", step, "error "+err.Error())
			continue
		}
		bc.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
		bc.Activate()
		switch parts[0] {
		case "lookup":
			fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			mine, theirs := os.NewFile(uintptr(fds[0]), "c"), xpc.NewFD(os.NewFile(uintptr(fds[1]), "s"))
			msg := xpc.Dict(bootstrap.KeyOp, bootstrap.OpLookup, bootstrap.KeyName, parts[1])
			if len(parts) > 2 {
				msg.Set(bootstrap.KeyDomain, xpc.String(parts[2]))
			}
			msg.Set(bootstrap.KeySocket, theirs)
			_, err := bc.SendWithReply(ctx, msg)
			theirs.Close()
			if err != nil {
				out = result(err)
				mine.Close()
				break
			}
			c, _ := xpc.NewConnectionFromFile(mine)
			mine.Close()
			c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
			c.Activate()
			if _, err := c.SendWithReply(ctx, xpc.Dict("cmd", "ping")); err != nil {
				out = "ping " + err.Error()
			} else if r, err := c.SendWithReply(ctx, xpc.Dict("cmd", "uid")); err != nil {
				out = "uid " + err.Error()
			} else {
				uid, _ := r.Int64("uid")
				out = fmt.Sprintf("ok pong uid %d", uid)
			}
			c.Cancel()
		case "disable":
			_, err := bc.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpDisable, bootstrap.KeyTarget, parts[1]))
			if err != nil {
				out = result(err)
			} else {
				out = "ok"
			}
		case "list":
			r, err := bc.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpList))
			if err != nil {
				out = result(err)
				break
			}
			jobs, _ := r.Array(bootstrap.KeyJobs)
			var labels []string
			for _, j := range jobs {
				labels = append(labels, strOf(j.(*xpc.Dictionary), "domain")+"/"+strOf(j.(*xpc.Dictionary), "label"))
			}
			out = "ok " + strings.Join(labels, ",")
		}
		bc.Cancel()
		fmt.Printf("R:%s=%s\n", step, out)
	}
}
