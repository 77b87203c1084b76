package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"extra"}, {"--log-level", "loud"}, {"--log-format", "xml"},
		{"--max-connections-per-user", "0"}, {"--max-connections-per-user", "-1"}, {"--max-connections-per-user", "x"}} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != exitUsage {
			t.Errorf("xpcd %v: exit %d, want %d\n%s", args, code, exitUsage, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, io.Discard, &stderr); code != exitOK || !strings.Contains(stderr.String(), "--user") ||
		!strings.Contains(stderr.String(), "-max-connections-per-user N") {
		t.Errorf("xpcd -h: exit %d\n%s", code, stderr.String())
	}
}

// xpcd --version prints one line, with the Go version, and starts
// nothing.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version"}, &stdout, &stderr); code != exitOK ||
		!strings.HasPrefix(stdout.String(), "xpcd ") || !strings.Contains(stdout.String(), "go1.") ||
		strings.Count(stdout.String(), "\n") != 1 || stderr.Len() != 0 {
		t.Errorf("xpcd --version: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestSdNotify(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), fmt.Sprintf("@xpcd-test-%d", os.Getpid())} {
		c := listenNotify(t, name)
		t.Setenv("NOTIFY_SOCKET", name)
		if err := sdNotify("READY=1"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readNotify(t, c); got != "READY=1" {
			t.Errorf("%s: got %q", name, got)
		}
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}

// xpcd starts, says it is ready, and shuts down cleanly on SIGTERM.
func TestRunUntilSIGTERM(t *testing.T) {
	dir, err := os.MkdirTemp("", "xpcd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	n := listenNotify(t, filepath.Join(dir, "notify"))
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "notify"))
	var stderr bytes.Buffer
	done := make(chan int)
	go func() { done <- run([]string{"--user", "--root", dir, "--log-format", "json"}, io.Discard, &stderr) }()
	if got := readNotify(t, n); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("notification %q", got)
	}
	if _, err := os.Stat(bootstrap.ForRoot(dir, true).Socket); err != nil {
		t.Fatalf("socket: %v", err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown after SIGTERM")
	}
	if got := readNotify(t, n); got != "STOPPING=1" {
		t.Errorf("notification %q", got)
	}
	if !strings.Contains(stderr.String(), `"msg":"xpcd stopped"`) {
		t.Errorf("log:\n%s", stderr.String())
	}
}

// TestProcs: xpcd runs on one processor unless GOMAXPROCS says otherwise.
func TestProcs(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMAXPROCS" {
				return v
			}
			return ""
		}
	}
	if n := procs(env("")); n != 1 {
		t.Errorf("without GOMAXPROCS: %d, want 1", n)
	}
	if n := procs(env("4")); n != 0 {
		t.Errorf("with GOMAXPROCS=4: %d, want 0 (left as the runtime set it)", n)
	}
}
