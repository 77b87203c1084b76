package xpcd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/bundletest"
)

// BenchmarkColdLaunchApp compares the first use of an application's XPC
// service with the first use of a launch-on-demand agent, in one run: the
// time from a lookup to the service's first reply, the service not
// running. Sub-benchmarks:
//
//	agent/plain     an agent (user/0), looked up by the test process
//	app             alternately: the same agent looked up by a bundle's
//	                application (its pid domain is searched first), and
//	                the bundle's Application service looked up by another
//	                application of the bundle (agent-p50-ns,
//	                appservice-p50-ns)
//
// The service is the test's helper (helperMain, started directly:
// XPCD_TEST_APPSVC) in all three, and the agent's program is the bundle
// service's executable itself. The application
// is a copy of the test binary driven through a pipe (startApp): the
// pipe's round trip is in both app figures. Each iteration starts with
// the service stopped (the agent booted out and in again; the
// application a new process, its instance gone with the last one)
// outside the timer. Run as root:
//
//	go test -run '^$' -bench BenchmarkColdLaunchApp -benchtime 30x ./internal/xpcd/
func BenchmarkColdLaunchApp(b *testing.B) {
	dir, err := os.MkdirTemp("", "xpcd")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	paths := bootstrap.ForRoot(dir, false)
	os.MkdirAll(paths.Agents, 0o755)
	const agent, appSvc = "bench.cold.agent", "org.bench.cold.helper"
	apps := filepath.Join(dir, "apps")
	os.Mkdir(apps, 0o755)
	root := bundletest.Make(b, apps, bundletest.Spec{Identifier: "org.bench.cold", Exe: exe, Services: []bundletest.ServiceSpec{
		{Name: "Helper", Identifier: appSvc, Type: bundle.Application, Environment: appEnv(appSvc)}}})
	bd, err := bundle.Read(root)
	if err != nil {
		b.Fatal(err)
	}
	job, err := xpc.ValueOf(map[string]any{
		"Label": agent, "Program": bd.Service(appSvc).Executable,
		"EnvironmentVariables": map[string]any{"XPCD_TEST_APPSVC": "1", "XPCD_TEST_NAMES": agent},
		"MachServices":         map[string]any{agent: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	text, err := xpc.ToPlist(job, xpc.PlistXML)
	if err != nil {
		b.Fatal(err)
	}
	plist := filepath.Join(dir, agent+".plist")
	if err := os.WriteFile(plist, text, 0o644); err != nil {
		b.Fatal(err)
	}
	d, err := New(Config{Paths: paths, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PressureInterval: -1,
		UpgradeInterval: -1, StopServicesOnClose: true, JournalSocket: "-"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Close(context.Background())
	admin := func(op string, kv ...any) *xpc.Dictionary {
		c, err := xpc.DialUnix(ctx, paths.Socket)
		if err != nil {
			b.Fatal(err)
		}
		c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
		c.Activate()
		defer c.Cancel()
		r, err := c.SendWithReply(ctx, xpc.Dict(append([]any{bootstrap.KeyOp, op}, kv...)...))
		if err != nil {
			b.Fatalf("%s: %v", op, err)
		}
		return r
	}
	target := UserDomain(0) + "/" + agent
	load := func() { admin(bootstrap.OpBootstrap, bootstrap.KeyDomain, UserDomain(0), bootstrap.KeyPath, plist) }
	restartAgent := func() {
		admin(bootstrap.OpBootout, bootstrap.KeyTarget, target, bootstrap.KeyWait, true)
		load()
	}
	load()
	// Each sub-benchmark reports the median too (p50-ns/op): the mean
	// of cold launches on a busy machine says little.
	var took []time.Duration
	var t0 time.Time
	start := func(b *testing.B) { b.StartTimer(); t0 = time.Now() }
	stop := func(b *testing.B) { took = append(took, time.Since(t0)); b.StopTimer() }
	report := func(b *testing.B) {
		slices.Sort(took)
		if len(took) > 0 {
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns/op")
		}
		took = nil
	}
	b.Run("agent/plain", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			restartAgent()
			start(b)
			c, err := xpc.NewServiceConnection(agent, xpc.WithBootstrapSocket(paths.Socket))
			if err != nil {
				b.Fatal(err)
			}
			c.SetHandler(xpc.HandlerFunc(func(context.Context, *xpc.Message) {}))
			c.Activate()
			if _, err := c.SendWithReply(ctx, xpc.Dict("cmd", "ping")); err != nil {
				b.Fatal(err)
			}
			stop(b)
			c.Cancel()
			b.StartTimer()
		}
		report(b)
	})
	// The agent and the app service by the same kind of application,
	// alternately, so that both see the same load: ns/op is the two
	// together; agent-p50-ns and appservice-p50-ns each.
	b.Run("app", func(b *testing.B) {
		var agentTook, svcTook []time.Duration
		// measure times one cold lookup by a new application, and
		// leaves nothing running after it.
		measure := func(name string) time.Duration {
			app := startAppAt(b, paths.Socket, bd.Executable)
			app.ask("noop")
			start(b)
			app.lookup(name)
			stop(b)
			app.exit()
			if name == agent {
				restartAgent()
			}
			for {
				jobs, _ := admin(bootstrap.OpList).Get(bootstrap.KeyJobs).(xpc.Array)
				found := false
				for _, o := range jobs {
					if jd, ok := o.(*xpc.Dictionary); ok && strOf(jd, bootstrap.KeyDomain) == PIDDomain(app.pid) {
						found = true
					}
				}
				if !found {
					break
				}
				time.Sleep(time.Millisecond)
			}
			d := took[len(took)-1]
			took = nil
			return d
		}
		i := 0
		for b.Loop() {
			b.StopTimer()
			// Alternately first, so that neither always follows the
			// other's cleanup.
			if i++; i%2 == 0 {
				agentTook = append(agentTook, measure(agent))
				svcTook = append(svcTook, measure(appSvc))
			} else {
				svcTook = append(svcTook, measure(appSvc))
				agentTook = append(agentTook, measure(agent))
			}
			b.StartTimer()
		}
		for _, m := range []struct {
			name string
			d    []time.Duration
		}{{"agent-p50-ns", agentTook}, {"appservice-p50-ns", svcTook}} {
			slices.Sort(m.d)
			if len(m.d) > 0 {
				b.ReportMetric(float64(m.d[len(m.d)/2].Nanoseconds()), m.name)
			}
		}
	})
}

// BenchmarkResolveApp is what a session pays, once, on its first lookup
// to know its pid domain (readAppBundle): for a process not started from
// a bundle (the test process itself) and for a bundle's application with
// one service (its main executable, a copy of the test binary, running
// as TestHelperAppClient).
func BenchmarkResolveApp(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	root := bundletest.Make(b, b.TempDir(), bundletest.Spec{Identifier: "org.bench.resolve", Exe: exe, Services: []bundletest.ServiceSpec{
		{Name: "Helper", Identifier: "org.bench.resolve.helper"}}})
	bd, err := bundle.Read(root)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			if bb, _ := readAppBundle(os.Getpid(), exe); bb != nil {
				b.Fatal("the test binary in a bundle")
			}
		}
	})
	app := startAppAt(b, "/nonexistent", bd.Executable)
	defer app.exit()
	b.Run("bundle", func(b *testing.B) {
		for b.Loop() {
			if bb, _ := readAppBundle(app.pid, bd.Executable); bb == nil {
				b.Fatal("no bundle")
			}
		}
	})
}
