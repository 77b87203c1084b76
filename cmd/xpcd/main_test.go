package main

import (
	"bytes"
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

// TestMain runs xpcd itself when a test re-executes the test binary as
// xpcd (asXpcd), so that LISTEN_PID can name the process that runs it.
func TestMain(m *testing.M) {
	if os.Getenv("XPCD_TEST_AS_XPCD") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"extra", "--user"}, {"--user", "--log-level", "loud"},
		{"--user", "--log-format", "xml"}, {"--user", "--max-connections-per-user", "0"},
		{"--user", "--max-connections-per-user", "-1"}, {"--user", "--max-connections-per-user", "x"},
		{"--user", "--job-log-max-bytes", "100"}, {"--user", "--system"}, {"--root", t.TempDir()},
		{"--log-level", "debug"}} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != exitUsage {
			t.Errorf("xpcd %v: exit %d, want %d\n%s", args, code, exitUsage, stderr.String())
		}
		if !strings.HasPrefix(stderr.String(), "xpcd: ") {
			t.Errorf("xpcd %v: stderr %q", args, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"--root", t.TempDir()}, io.Discard, &stderr); !strings.Contains(stderr.String(), "--system") ||
		!strings.Contains(stderr.String(), "--user") {
		t.Errorf("xpcd --root DIR: exit %d, the error does not name both --system and --user:\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"-user", "-log-level=debug"}, io.Discard, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "long flags take two dashes: --user") {
		t.Errorf("xpcd -user: exit %d\n%s", code, stderr.String())
	}
	var stdout bytes.Buffer
	stderr.Reset()
	if code := run([]string{"-h"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "--system") ||
		!strings.Contains(stdout.String(), "--max-connections-per-user N") || strings.Contains(stdout.String(), "gen-man") {
		t.Errorf("xpcd -h: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// xpcd with no flags starts nothing: it prints its usage to standard error
// and exits 2.
func TestNoFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != exitUsage || stdout.Len() != 0 ||
		!strings.Contains(stderr.String(), "xpcd --system | --user") || !strings.Contains(stderr.String(), "--root DIR") {
		t.Errorf("xpcd: exit %d, stdout %q, stderr:\n%s", code, stdout.String(), stderr.String())
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

// --gen-man DIR writes xpcd.8 with the sections a manual page needs, the
// options before the files, and without the hidden flag.
func TestGenMan(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	if code := run([]string{"--gen-man", dir}, io.Discard, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "xpcd.8"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	last := -1
	for _, sec := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES", "SIGNALS", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"} {
		i := strings.Index(page, "\n.SH "+sec+"\n")
		if i < last {
			t.Errorf("section %s missing or out of order", sec)
		}
		last = i
	}
	for _, want := range []string{`.TH "XPCD" "8"`, `\fB--system\fP`, "WATCHDOG_USEC", "LISTEN_FDS"} {
		if !strings.Contains(page, want) {
			t.Errorf("xpcd.8 lacks %q", want)
		}
	}
	if strings.Contains(page, "gen-man") {
		t.Error("xpcd.8 names the hidden --gen-man")
	}
}

// xpcd starts, says it is ready, and shuts down cleanly on SIGTERM.
func TestRunUntilSIGTERM(t *testing.T) {
	dir := shortTempDir(t)
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
	if _, err := os.Stat(bootstrap.ForRoot(dir, true).Socket); err == nil {
		t.Error("the socket xpcd made is still there after it stopped")
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

// A second xpcd for an instance one already serves says so and exits 1,
// leaving the first one's socket alone.
func TestInstanceAlreadyServed(t *testing.T) {
	dir := shortTempDir(t)
	path := bootstrap.ForRoot(dir, true).Socket
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unixpacket", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var stderr bytes.Buffer
	code := run([]string{"--user", "--root", dir}, io.Discard, &stderr)
	if code != exitFail || !strings.Contains(stderr.String(), "another xpcd serves "+path+"; stop it first") {
		t.Errorf("exit %d, log:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the first one's socket: %v", err)
	}
}

// --gen-man into a directory another user may write: a symbolic link
// planted at xpcd.8 is replaced, not followed.
func TestGenManReplacesPlantedLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "xpcd.8")); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	if code := run([]string{"--gen-man", dir}, io.Discard, &stderr); code != exitOK {
		t.Fatalf("--gen-man: %d\n%s", code, stderr.String())
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("--gen-man wrote through a link: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "xpcd.8")); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("xpcd.8: %v %v", fi, err)
	}
}
