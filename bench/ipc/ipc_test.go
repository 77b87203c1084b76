package ipc

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

// TestMain lets the test binary be the server child too, as ipcbench is:
// Run starts `<test binary> serve SYSTEM ...`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(ServeMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestQuickJSON runs the quick mode for goxpc and raw-unix, under both
// GOMAXPROCS settings, and checks that the JSON report has every required
// field. It makes no assertion about speed.
func TestQuickJSON(t *testing.T) {
	rep := runQuick(t, []string{sysGoxpc, sysRaw})
	doc := writeAndRead(t, rep)
	rows := doc["rows"].([]any)
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4 (2 systems x 2 settings)", len(rows))
	}
	seen := map[string]int{}
	for _, r := range rows {
		row := r.(map[string]any)
		name, _ := row["name"].(string)
		seen[name]++
		for _, k := range []string{"gomaxprocs", "p50_us", "p99_us", "mb_per_s_16m"} {
			if v, ok := row[k].(float64); !ok || v <= 0 {
				t.Errorf("%s: %s = %v, want a positive number", name, k, row[k])
			}
		}
		v, ok := row["calls_per_s"]
		if !ok {
			t.Errorf("%s: no calls_per_s", name)
		}
		switch name {
		case sysGoxpc:
			if f, _ := v.(float64); f <= 0 {
				t.Errorf("goxpc: calls_per_s = %v", v)
			}
			for _, k := range []string{"idle_conn_kib", "mb_per_s_16m_data_echo", "mb_per_s_16m_shm_sealed"} {
				if f, _ := row[k].(float64); f <= 0 {
					t.Errorf("goxpc: %s = %v", k, row[k])
				}
			}
		case sysRaw:
			if v != nil {
				t.Errorf("raw-unix: calls_per_s = %v, want null", v)
			}
			if f, _ := row["calls_per_s_8conns"].(float64); f <= 0 {
				t.Errorf("raw-unix: calls_per_s_8conns = %v", row["calls_per_s_8conns"])
			}
		}
	}
	if seen[sysGoxpc] != 2 || seen[sysRaw] != 2 {
		t.Errorf("rows by system: %v", seen)
	}
	runs := doc["runs"].([]any)
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	for _, r := range runs {
		run := r.(map[string]any)
		ratios := run["ratios"].(map[string]any)
		if _, ok := ratios[sysRaw].(map[string]any)["p50"].(float64); !ok {
			t.Errorf("no p50 ratio for raw-unix: %v", ratios)
		}
		if goals := run["goals"].([]any); len(goals) != 7 {
			t.Errorf("%d goals, want 7", len(goals))
		}
	}
}

// TestDBusQuick measures D-Bus through a private dbus-daemon, briefly;
// skipped where dbus-daemon is not installed.
func TestDBusQuick(t *testing.T) {
	if _, err := dbusDaemonPath(); err != nil {
		t.Skip("dbus-daemon not installed")
	}
	rep := runQuick(t, []string{sysDBus}, func(c *Config) { c.Procs = []int{1} })
	if len(rep.Skipped) != 0 || len(rep.Rows) != 1 {
		t.Fatalf("skipped %v, %d rows", rep.Skipped, len(rep.Rows))
	}
	if r := rep.Rows[0]; r.Name != sysDBus || r.P50US <= 0 || r.CallsPerS == nil {
		t.Errorf("row %+v", r)
	}
}

func runQuick(t *testing.T, systems []string, adjust ...func(*Config)) *Report {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Exe: exe, Systems: systems, Quick: true, Log: io.Discard}
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	for _, f := range adjust {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func writeAndRead(t *testing.T, rep *Report) map[string]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ipc.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteTable(io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// BenchmarkGoxpcPing is the goxpc ping with client and server in this one
// process: `go test -bench GoxpcPing -benchmem` counts the allocations of
// both ends of a round trip, and -cpuprofile/-memprofile show where they
// come from.
func BenchmarkGoxpcPing(b *testing.B) {
	benchPings(b, goxpcPair(b))
}

// goxpcPair starts a goxpc server in this process and connects to it; the
// test's cleanup stops both.
func goxpcPair(tb testing.TB) *goxpcCaller {
	l, ep, err := serveGoxpc()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		l.Cancel()
		ep.Close()
	})
	g, err := dialGoxpc(ep)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.close() })
	return g
}

// BenchmarkRawPing is the raw-unix ping in one process, the floor beside
// BenchmarkGoxpcPing: run both with the same flags and compare.
func BenchmarkRawPing(b *testing.B) {
	serve := func(dir string) (string, func(), error) {
		packet, _, stop, err := serveRaw(dir)
		return packet, stop, err
	}
	benchDiagnostic(b, serve, func(p string, n int) (caller, error) { return dialRaw(p, n) })
}

// BenchmarkRawNoSchedPing is BenchmarkRawPing with raw-nosched's reads
// and writes.
func BenchmarkRawNoSchedPing(b *testing.B) {
	benchDiagnostic(b, serveRawNoSched, func(p string, n int) (caller, error) { return dialRawNoSched(p, n) })
}

// BenchmarkRawStreamPing is BenchmarkRawPing over a SOCK_STREAM socket
// with length-framed pings (raw-stream).
func BenchmarkRawStreamPing(b *testing.B) {
	benchDiagnostic(b, serveRawStream, func(p string, n int) (caller, error) { return dialRawStream(p, n) })
}

// benchDiagnostic times the pings of a raw system served and dialled in
// this process.
func benchDiagnostic(b *testing.B, serve func(dir string) (string, func(), error), dial func(path string, size int) (caller, error)) {
	path, stop, err := serve(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	r, err := dial(path, 156)
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	benchPings(b, r)
}

// benchPings times c's calls, one per iteration, after one untimed call
// that makes the connection.
func benchPings(b *testing.B, c caller) {
	ctx := context.Background()
	if err := c.call(ctx, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := c.call(ctx, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRawDiagnostics: raw-nosched, raw-epoll and raw-stream echo what they
// are sent, message by message, and their callers check each echo.
func TestRawDiagnostics(t *testing.T) {
	for _, sys := range []struct {
		name  string
		serve func(dir string) (string, func(), error)
		dial  func(path string, size int) (caller, error)
	}{
		{sysRawNoSched, serveRawNoSched, func(p string, n int) (caller, error) { return dialRawNoSched(p, n) }},
		{sysRawEpoll, serveRawEpoll, func(p string, n int) (caller, error) { return dialRawEpoll(p, n) }},
		{sysRawStream, serveRawStream, func(p string, n int) (caller, error) { return dialRawStream(p, n) }},
	} {
		t.Run(sys.name, func(t *testing.T) {
			packet, stop, err := sys.serve(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			r, err := sys.dial(packet, 156)
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			for i := range 1000 {
				if err := r.call(context.Background(), int64(i)); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
		})
	}
}

// BenchmarkGoxpcBulk moves 16 MiB per operation, in one process, the ways
// ipcbench does: a reused shared-memory region, and a data object echoed.
func BenchmarkGoxpcBulk(b *testing.B) {
	g := goxpcPair(b)
	ctx := context.Background()
	src, sum := bulkSource(16 << 20)
	b.Run("shm", func(b *testing.B) {
		s, err := newBulkShm(g, src, sum)
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if err := s.once(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("data-echo", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if err := bulkData(ctx, g, src, sum, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPingEncodings checks what each codec in the comparison sends.
func TestPingEncodings(t *testing.T) {
	p := ping{Method: pingMethod, Seq: -42, Payload: payload}
	var q ping
	if err := q.unmarshalBinary(p.appendBinary(nil)); err != nil || q != p {
		t.Fatalf("binary round trip: %+v, %v", q, err)
	}
	body, err := xpc.Encode(pingDict(7))
	if err != nil {
		t.Fatal(err)
	}
	d, err := xpc.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := d.(*xpc.Dictionary).String("payload"); s != payload {
		t.Errorf("payload %q", s)
	}
	if n := *requestBytes(sysGoxpc); n != len(body)+16 {
		t.Errorf("requestBytes(goxpc) = %d, body %d", n, len(body))
	}
}
