package xpctest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
)

// TestHelperWriter is a service, run by xpcd with XPCTEST_WRITE=N: it
// writes N lines to standard output ("out I", after XPCTEST_PREFIX if set,
// such as a "<7>" priority) and N to standard error ("err I"), then makes the file XPCTEST_MARK, then exits, or with
// XPCTEST_HOLD=1 waits to be stopped.
func TestHelperWriter(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("XPCTEST_WRITE"))
	if err != nil {
		t.Skip("run by xpcd as a service")
	}
	prefix := os.Getenv("XPCTEST_PREFIX")
	for i := range n {
		fmt.Fprintf(os.Stdout, "%sout %d\n", prefix, i)
		fmt.Fprintf(os.Stderr, "err %d\n", i)
	}
	if err := os.WriteFile(os.Getenv("XPCTEST_MARK"), nil, 0o644); err != nil {
		os.Exit(2)
	}
	if os.Getenv("XPCTEST_HOLD") == "1" {
		time.Sleep(time.Minute) // stopped long before
	}
	os.Exit(0)
}

// writerLines is how many lines of each stream the writer writes: more
// than a FIFO holds, so that xpcd reads them while the service writes.
const writerLines = 3000

// Every line a service wrote before it stopped is in the test's output,
// in order for each stream: whether it exits, is killed, or runs until
// the server closes, and whether or not the server closes as soon as the
// service is done writing.
func TestOutputKeepsEveryLine(t *testing.T) {
	for _, c := range []struct {
		name string
		hold bool
		stop func(t *testing.T, srv *xpctest.Server, target string)
	}{
		{"exit", false, nil},
		{"killed", true, func(t *testing.T, srv *xpctest.Server, target string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := srv.Admin(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpKill, bootstrap.KeyTarget, target,
				bootstrap.KeySignal, int64(syscall.SIGKILL))); err != nil {
				t.Fatal(err)
			}
		}},
		{"server-closed", true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			mark := filepath.Join(t.TempDir(), "done")
			env := map[string]string{"XPCTEST_WRITE": strconv.Itoa(writerLines), "XPCTEST_MARK": mark}
			if c.hold {
				env["XPCTEST_HOLD"] = "1"
			} else {
				env["XPCTEST_PREFIX"] = "<7>" // lines at debug level: Output has them too
			}
			label := "org.goxpc.xpctest.writer"
			plist := xpctest.AgentPlist(label, []string{os.Args[0], "-test.run=^TestHelperWriter$"}, nil,
				map[string]any{"RunAtLoad": true, "EnvironmentVariables": env})
			opts := []xpctest.Option{xpctest.WithPlist("writer.plist", plist)}
			if !c.hold {
				// A logger that drops the lines: Output has them all
				// the same, those at debug level too.
				opts = append(opts, xpctest.WithLogger(slog.New(slog.DiscardHandler)))
			}
			srv := xpctest.NewServer(t, opts...)
			waitFile(t, mark)
			if c.stop != nil {
				c.stop(t, srv, "user/"+strconv.Itoa(os.Geteuid())+"/"+label)
			}
			// Closed at once: xpcd has not read everything yet.
			srv.Close()
			checkLines(t, srv.Output(label), writerLines)
		})
	}
}

// A test reads a service's lines while the server runs.
func TestWaitOutput(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "done")
	label := "org.goxpc.xpctest.writer"
	plist := xpctest.AgentPlist(label, []string{os.Args[0], "-test.run=^TestHelperWriter$"}, nil,
		map[string]any{"RunAtLoad": true, "EnvironmentVariables": map[string]string{"XPCTEST_WRITE": "3", "XPCTEST_MARK": mark}})
	srv := xpctest.NewServer(t, xpctest.WithPlist("writer.plist", plist))
	checkLines(t, srv.WaitOutput(t, label, 6), 3)
	if got := srv.Output("org.goxpc.xpctest.none"); len(got) != 0 {
		t.Errorf("a job that wrote nothing: %q", got)
	}
}

// checkLines checks that lines holds "out 0".."out N-1" and "err 0"..
// "err N-1", each stream in order.
func checkLines(t *testing.T, lines []string, n int) {
	t.Helper()
	next := map[string]int{}
	for _, l := range lines {
		stream, num, ok := strings.Cut(l, " ")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || (stream != "out" && stream != "err") {
			continue
		}
		if i != next[stream] {
			t.Fatalf("%s: line %d after %d lines (%d lines in all)", stream, i, next[stream], len(lines))
		}
		next[stream]++
	}
	if next["out"] != n || next["err"] != n {
		t.Fatalf("got %d lines of stdout and %d of stderr, want %d of each", next["out"], next["err"], n)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
