package xpc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The accept-loop tests run the listener in a child process (the test
// binary re-executed with acceptHelperEnv set to the socket path), whose
// descriptor limit the child lowers for itself to acceptHelperNofile: the
// test process keeps its own.
const (
	acceptHelperEnv    = "GOXPC_TEST_ACCEPT_LISTENER"
	acceptHelperNofile = 48
)

func init() {
	if path := os.Getenv(acceptHelperEnv); path != "" {
		if err := acceptHelper(path); err != nil {
			fmt.Fprintln(os.Stderr, "accept helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// acceptHelper listens at path with a small descriptor limit, answers every
// request with {"ok": true}, says "ready" on standard output and runs until
// its standard input ends. Told "fill", it takes every descriptor left
// (so that even accept fails) and says "full"; told "free", it gives them
// back and says "freed".
func acceptHelper(path string) error {
	lim := unix.Rlimit{Cur: acceptHelperNofile, Max: acceptHelperNofile}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	l, err := ListenUnix(path, 0o600)
	if err != nil {
		return err
	}
	l.SetHandler(func(p *Connection) {
		p.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
			m.Reply(ctx, Dict("ok", true))
		}))
		p.Activate()
	})
	l.Activate()
	fmt.Println("ready")
	var filler []int
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "fill":
			for {
				fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					break
				}
				filler = append(filler, fd)
			}
			fmt.Println("full")
		case "free":
			closeRawFDs(filler)
			filler = nil
			fmt.Println("freed")
		}
	}
	l.Cancel()
	return nil
}

// cpuTime returns the user and system CPU time process pid has used.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ
}

// TestAcceptAtDescriptorLimitDoesNotSpin floods a listener whose process
// runs out of descriptors. Before, its accept loop retried EMFILE at once,
// using a whole processor and serving nobody. Now it backs off, sheds
// waiting clients (who see their connection end), and serves again once
// descriptors are free.
func TestAcceptAtDescriptorLimitDoesNotSpin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), acceptHelperEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	tell := func(cmd, want string) {
		t.Helper()
		if cmd != "" {
			fmt.Fprintln(stdin, cmd)
		}
		if line, err := out.ReadString('\n'); err != nil || line != want+"\n" {
			t.Fatalf("helper: %q, %v; want %q", line, err, want)
		}
	}
	tell("", "ready")

	// More clients than the listener has descriptors for. The listener
	// then takes its last descriptors itself, so that even accept fails,
	// and more clients come, to wait in the backlog.
	var flood []int
	defer func() { closeRawFDs(flood) }()
	connect := func(n int) {
		t.Helper()
		for range n {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			flood = append(flood, fd)
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				t.Fatal(err)
			}
		}
	}
	connect(acceptHelperNofile)
	time.Sleep(200 * time.Millisecond)
	tell("fill", "full")
	connect(acceptHelperNofile)
	time.Sleep(100 * time.Millisecond)

	before := cpuTime(t, cmd.Process.Pid)
	time.Sleep(time.Second)
	used := cpuTime(t, cmd.Process.Pid) - before
	t.Logf("listener at its descriptor limit used %v of CPU in 1s", used)
	if used > 300*time.Millisecond {
		t.Errorf("listener at its descriptor limit used %v of CPU in 1s: it spins", used)
	}

	// Some client that came once even accept failed has been shed: its
	// connection ended.
	waiting := flood[acceptHelperNofile:]
	shed := false
	for deadline := time.Now().Add(5 * time.Second); !shed && time.Now().Before(deadline); {
		pfd := make([]unix.PollFd, len(waiting))
		for i, fd := range waiting {
			pfd[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLRDHUP}
		}
		if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		for _, p := range pfd {
			shed = shed || p.Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
		}
	}
	if !shed {
		t.Error("no waiting client was shed: they wait in the backlog for as long as the listener is out of descriptors")
	}

	// The flood goes away; new clients are served.
	closeRawFDs(flood)
	flood = nil
	tell("free", "freed")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialUnix(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cancel()
	c.Activate()
	reply, err := c.SendWithReply(ctx, Dict("hello", true))
	if err != nil {
		t.Fatalf("after the flood: %v", err)
	}
	if ok, _ := reply.Bool("ok"); !ok {
		t.Fatalf("after the flood: reply %v", reply)
	}
}

// TestListenUnixCancelledInactiveLeaksNothing: a path listener cancelled
// before it was ever activated closes everything it opened, the spare
// descriptor its accept loop keeps included.
func TestListenUnixCancelledInactiveLeaksNothing(t *testing.T) {
	leakCheck(t)
	path := filepath.Join(t.TempDir(), "sock")
	for range 3 {
		l, err := ListenUnix(path, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		l.Cancel()
		<-l.Done()
	}
}
