package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// startMonitor runs xpcctl monitor with args until the returned stop is
// called, which returns its exit status.
func startMonitor(t *testing.T, args ...string) (out, errb *syncBuffer, stop func() int) {
	t.Helper()
	out, errb = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"monitor"}, args...), strings.NewReader(""), out, errb) }()
	return out, errb, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("monitor did not end after Ctrl-C")
			return -1
		}
	}
}

// waitOutput waits until the output has n lines.
func waitOutput(t *testing.T, out, errb *syncBuffer, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) >= n && lines[0] != "" {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor printed:\n%s\nstderr:\n%s", out, errb)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func monitoredServer(t *testing.T, name string) (*xpctest.Server, string) {
	t.Helper()
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	s.Serve(t, name, xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) {
		if m.WantsReply() {
			cmd, _ := m.Body.String("cmd")
			m.Reply(ctx, xpc.Dict("answer", "pong to "+cmd))
		}
	}))
	return s, "user/" + strconv.Itoa(os.Geteuid()) + "/" + name
}

// monitor, attached before the service runs, shows its first request and
// the reply: direction, peer, kind and id, size, descriptors, the reply's
// latency and the decoded body; Ctrl-C ends it with status 0.
func TestMonitorShowsRequestAndReply(t *testing.T) {
	s, target := monitoredServer(t, "test.xpcctl.mon")
	out, errb, stop := startMonitor(t, target)
	waitFor := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "waiting for its next instance") {
		if time.Now().After(waitFor) {
			t.Fatalf("no waiting line; stderr:\n%s", errb)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := s.Connect(t, "test.xpcctl.mon")
	if _, err := c.SendWithReply(context.Background(), xpc.Dict("cmd", "ping")); err != nil {
		t.Fatal(err)
	}
	lines := waitOutput(t, out, errb, 2)
	if code := stop(); code != exitOK {
		t.Errorf("exit %d after Ctrl-C; stderr:\n%s", code, errb)
	}
	pid := strconv.Itoa(os.Getpid())
	req := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} → pid ` + pid + ` request #(\d+) \d+ B 0 fds <dictionary> \{.*"cmd" => <string: "ping">`)
	rep := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} ← pid ` + pid + ` reply #(\d+) \d+ B 0 fds (\S+) <dictionary> \{.*"answer" => <string: "pong to ping">`)
	m1, m2 := req.FindStringSubmatch(lines[0]), rep.FindStringSubmatch(lines[1])
	if m1 == nil || m2 == nil || m1[1] != m2[1] {
		t.Fatalf("monitor printed:\n%s", strings.Join(lines, "\n"))
	}
	if d, err := time.ParseDuration(m2[2]); err != nil || d <= 0 {
		t.Errorf("reply latency %q (%v)", m2[2], err)
	}
}

// --json prints one object per message, the body in tagged JSON.
func TestMonitorJSON(t *testing.T) {
	s, target := monitoredServer(t, "test.xpcctl.monjson")
	c := s.Connect(t, "test.xpcctl.monjson")
	if _, err := c.SendWithReply(context.Background(), xpc.Dict("cmd", "first")); err != nil {
		t.Fatal(err)
	}
	out, errb, stop := startMonitor(t, "--json", target)
	// Attached to the running instance: messages from now on.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("nothing printed; stderr:\n%s", errb)
		}
		if _, err := c.SendWithReply(context.Background(), xpc.Dict("cmd", "json")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := waitOutput(t, out, errb, 2)
	stop()
	var recs [2]map[string]any
	for i := range recs {
		if err := json.Unmarshal([]byte(lines[i]), &recs[i]); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, lines[i])
		}
	}
	if recs[0]["dir"] != "in" || recs[0]["kind"] != "request" || recs[1]["kind"] != "reply" ||
		recs[1]["reply_to"] != recs[0]["id"] || recs[1]["latency_ns"] == nil {
		t.Fatalf("records:\n%s", strings.Join(lines, "\n"))
	}
	body, _ := json.Marshal(recs[0]["body"])
	if !strings.Contains(string(body), `"json"`) {
		t.Errorf("request body %s", body)
	}
}

// monitor needs exactly one of TARGET and --pid.
func TestMonitorUsage(t *testing.T) {
	for _, args := range [][]string{{"monitor"}, {"monitor", "a/b", "--pid", "3"}, {"monitor", "a/b", "c/d"}} {
		if r := runCmd(t, nil, args...); r.code != exitUsage {
			t.Errorf("%q: exit %d", args, r.code)
		}
	}
}

// The xpcctl binary, run as a user runs it: it shows the messages, and
// SIGINT (Ctrl-C) ends it with status 0.
func TestMonitorBinaryCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds xpcctl")
	}
	bin := filepath.Join(t.TempDir(), "xpcctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s, target := monitoredServer(t, "test.xpcctl.monbin")
	c := s.Connect(t, "test.xpcctl.monbin")
	cmd := exec.Command(bin, "monitor", target)
	cmd.Env = append(os.Environ(), s.Env())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The monitor may attach between a request and its reply: its first
	// line is then a reply. Requests go on until a request's line is
	// followed by its reply's.
	var got []string
	paired := func() bool {
		n := len(got)
		return n >= 2 && strings.Contains(got[n-2], "→") && strings.Contains(got[n-1], "←")
	}
	deadline := time.After(30 * time.Second)
	for !paired() {
		if _, err := c.SendWithReply(context.Background(), xpc.Dict("cmd", "bin")); err != nil {
			t.Fatal(err)
		}
		wait := time.After(50 * time.Millisecond)
	read:
		for !paired() {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("xpcctl monitor ended; printed:\n%s\nstderr:\n%s", strings.Join(got, "\n"), errb.String())
				}
				got = append(got, l)
			case <-wait:
				break read
			case <-deadline:
				t.Fatalf("xpcctl monitor printed no request and its reply:\n%s\nstderr:\n%s", strings.Join(got, "\n"), errb.String())
			}
		}
	}
	if last := got[len(got)-1]; !strings.Contains(last, `"pong to bin"`) {
		t.Fatalf("printed:\n%s", strings.Join(got, "\n"))
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGINT: %v; stderr:\n%s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("xpcctl monitor did not end on SIGINT")
	}
}
