package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// A LISTEN_FDS too large to allocate files for is refused with exit
// status 1, as any count above one is: xpcd does not crash.
func TestSocketActivationHugeCount(t *testing.T) {
	dir := shortTempDir(t)
	paths := bootstrap.ForRoot(dir, true)
	sock := boundSocket(t, paths.Socket, unix.SOCK_SEQPACKET, true)
	for _, n := range []string{"4611686018427387904", "2"} {
		cmd, stderr := asXpcd(t, sock, []string{"LISTEN_FDS=" + n}, "--user", "--root", dir)
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFail {
			t.Fatalf("LISTEN_FDS=%s: %v, want exit status %d\n%s", n, err, exitFail, stderr)
		}
		if !strings.Contains(stderr.String(), n+" sockets passed") {
			t.Errorf("LISTEN_FDS=%s: stderr does not say what was wrong:\n%s", n, stderr)
		}
	}
}

// A descriptor xpcd inherited without close-on-exec (from a root shell,
// a wrapper, a socket activation meant for another process) does not
// reach the jobs it launches, which may run as other users.
func TestInheritedDescriptorsStayInXpcd(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := shortTempDir(t)
	paths := bootstrap.ForRoot(dir, true)
	if err := os.MkdirAll(paths.Agents, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	plist := `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>Label</key><string>org.example.fds</string>
<key>ProgramArguments</key><array><string>/bin/sh</string><string>-c</string>
<string>if [ -e /proc/self/fd/7 ]; then echo leaked; else echo kept; fi &gt; ` + out + `.tmp; mv ` + out + `.tmp ` + out + `</string></array>
<key>RunAtLoad</key><true/>
</dict></plist>
`
	if err := os.WriteFile(filepath.Join(paths.Agents, "fds.plist"), []byte(plist), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command(exe, "--user", "--root", dir)
	cmd.Env = append(os.Environ(), "XPCD_TEST_AS_XPCD=1")
	// w becomes descriptor 7, without close-on-exec.
	cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, w}
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(out)
		if err == nil {
			if got := strings.TrimSpace(string(b)); got != "kept" {
				t.Fatalf("the job saw xpcd's inherited descriptor 7: %q", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not run: %v\n%s", err, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A notification socket nobody reads, its queue full, holds xpcd no
// longer than notifyTimeout a notification: not its start, nor its
// shutdown (which waits for the watchdog's pings to end).
func TestNotifySocketNotRead(t *testing.T) {
	dir := shortTempDir(t)
	name := filepath.Join(dir, "notify")
	listenNotify(t, name)
	fill, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fill)
	for {
		if err := unix.Sendto(fill, []byte("WATCHDOG=1"), 0, &unix.SockaddrUnix{Name: name}); err != nil {
			break
		}
	}
	t.Setenv("NOTIFY_SOCKET", name)
	done := make(chan error, 1)
	go func() { done <- sdNotify("STOPPING=1") }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a notification to a full queue was sent")
		}
	case <-time.After(10 * notifyTimeout):
		t.Fatal("a notification to a full queue waits")
	}
}
