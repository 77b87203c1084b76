package xpcd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A process that connected to xpcd and made a lookup's socket, and then
// executed another program, cannot present that socket: it would let a
// process hand its child a socket that the service, and a requirement,
// take for the program it executed. Here the test binary connects, makes
// the pair, and executes a copy of itself (another file), which sends the
// lookup: refused by rule socket-creator. Without the exec the same
// lookup is served.
func TestLookupAfterExecRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.ex", names: []string{"test.ex.svc"}})
	h.start()
	other := filepath.Join(h.dir, "other.test")
	copyFile(t, h.exe, other)
	run := func(exe string) string {
		cmd := exec.Command(h.exe, "-test.run=^TestHelperExecLookup$", "-test.count=1")
		cmd.Env = append(os.Environ(), "XPCD_EXEC_LOOKUP=connect", "XPCD_EXEC_LOOKUP_EXE="+exe,
			"XPCD_EXEC_LOOKUP_SOCK="+h.paths.Socket)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if r, ok := strings.CutPrefix(line, "EXEC-LOOKUP: "); ok {
				return r
			}
		}
		t.Fatalf("helper said nothing:\n%s", out)
		return ""
	}
	if r := run(h.exe); r != "ok" {
		t.Fatalf("the same program: %s", r)
	}
	if r := run(other); !strings.Contains(r, bootstrap.RuleSocketCreator) || !strings.Contains(r, "executed another program") {
		t.Fatalf("after executing another program: %s, want refused by %s", r, bootstrap.RuleSocketCreator)
	}
}

// TestHelperExecLookup is the helper process of TestLookupAfterExecRefused.
func TestHelperExecLookup(t *testing.T) {
	switch os.Getenv("XPCD_EXEC_LOOKUP") {
	case "connect":
		execLookupConnect(t)
	case "lookup":
		fmt.Println("EXEC-LOOKUP: " + execLookupSend())
	default:
		t.Skip("helper process")
	}
}

// execLookupConnect connects to xpcd and makes a socket pair, keeping both
// across exec, then executes XPCD_EXEC_LOOKUP_EXE to send the lookup.
func execLookupConnect(t *testing.T) {
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: os.Getenv("XPCD_EXEC_LOOKUP_SOCK")}); err != nil {
		t.Fatal(err)
	}
	// Wait until xpcd has accepted the connection (its hello arrives; it
	// is left for the library to read): xpcd records the program a peer
	// runs when it accepts it (docs/SECURITY.md).
	if _, _, err := unix.Recvfrom(c, make([]byte, 1), unix.MSG_PEEK); err != nil {
		t.Fatal(err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XPCD_EXEC_LOOKUP=") {
			env = append(env, kv)
		}
	}
	env = append(env, "XPCD_EXEC_LOOKUP=lookup", fmt.Sprintf("XPCD_EXEC_LOOKUP_FDS=%d,%d,%d", c, pair[0], pair[1]))
	exe := os.Getenv("XPCD_EXEC_LOOKUP_EXE")
	err = syscall.Exec(exe, []string{exe, "-test.run=^TestHelperExecLookup$", "-test.count=1"}, env)
	t.Fatalf("exec %s: %v", exe, err)
}

// execLookupSend sends the lookup with the descriptors it was given and
// says how it went.
func execLookupSend() string {
	var fds [3]int
	for i, s := range strings.Split(os.Getenv("XPCD_EXEC_LOOKUP_FDS"), ",") {
		fds[i], _ = strconv.Atoi(s)
	}
	conn, err := xpc.NewConnectionFromFile(os.NewFile(uintptr(fds[0]), "bootstrap"))
	if err != nil {
		return err.Error()
	}
	conn.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
	conn.Activate()
	defer conn.Cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	end := os.NewFile(uintptr(fds[2]), "end")
	req := xpc.Dict(bootstrap.KeyOp, bootstrap.OpLookup, bootstrap.KeyName, "test.ex.svc")
	req.Set(bootstrap.KeySocket, xpc.NewFD(end))
	if _, err := conn.SendWithReply(ctx, req); err != nil {
		return err.Error()
	}
	return "ok"
}
