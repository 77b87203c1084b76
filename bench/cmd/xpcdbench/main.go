// Command xpcdbench measures xpcd, goxpc's service manager, against the
// speed goals it was built to: connecting to a running service by name,
// launching a service that does not run, and starting with a thousand jobs
// loaded. It prints a table and can write the figures as JSON. Timings are
// reported, never judged: the goal column says whether this run met each
// goal, and the exit status is 0 either way.
//
// Usage:
//
//	cd bench && go run ./cmd/xpcdbench [-quick] [-json FILE]
//
// It builds xpcd (./cmd/xpcd of the repository) and a small service
// (./cmd/xpcdbench/service of the bench module) into a temporary
// directory with `go build`, runs every xpcd it needs there as
// `xpcd --system --root DIR` (a private instance: DIR/run/bootstrap.sock,
// DIR/LaunchAgents), and stops every xpcd and service it started before it
// exits, on error, ^C and SIGTERM too (if it is killed outright, the
// kernel kills xpcd and the services: both ask for PR_SET_PDEATHSIG).
// A full run takes about 15 s once built; -quick a few seconds.
//
// Measurements:
//
//   - lookup: one xpcd with one job. -n times: NewServiceConnection,
//     Activate, the first SendWithReply (xpcd looks the name up and hands
//     the socket to the running service) and its reply, then Cancel;
//     against -n round trips on one established connection, in
//     alternating blocks of 100. The lookup+connect cost is the
//     difference of the two. Over the same blocks, the CPU time and the
//     number of times a thread was scheduled in (/proc/PID/task/*/
//     schedstat), per connection and per round trip, in the client, xpcd
//     and the service. The library's lookups are pipelined (the first
//     request goes out right behind the lookup, docs/XPCD.md), so the
//     steps cannot be timed apart inside NewServiceConnection; they are
//     timed with the request form of the lookup instead (the one xpcctl
//     and older clients use, answered with {}): dial the bootstrap socket,
//     the lookup request, the first round trip; and the last two again on
//     one bootstrap connection kept open.
//     Before and after, the floor (cmd/xpcdbench/floor): the same
//     brokered design written with blocking system calls and nothing else,
//     in three processes of its own; its lookup+connect is measured the
//     same way, and goxpc's is reported over it.
//   - cold: the same xpcd, another job, launched on demand. -cold times:
//     with the job not running, a new connection's first request to its
//     reply, which includes xpcd launching the service and the service
//     checking in; then the service is told to exit, and the next launch
//     waits until xpcd reports the job "waiting". Each is paired with a
//     run of the same binary on its own, which exits as soon as main
//     starts (its own start cost). The service's reply says when its main
//     started and when it had checked in, which splits the cold time.
//   - jobs: -starts times, xpcd on a fresh root holding -jobs job plists
//     (each its own name, the service binary, on demand), timed from exec
//     to the answer of its first list request, with its VmRSS, VmHWM and
//     CPU time then; alternating with xpcd on an empty root. On the last
//     one, list requests and connections to one of the jobs.
//   - idle (only when named in -only): how often an idle xpcd wakes up.
//     An xpcd with three jobs (a StartCalendarInterval three days away, a
//     service started at load and left running, an on-demand job), and
//     at the same time one built from git revision -base (main by
//     default; "" for none) with the same jobs, are left alone for
//     -settle once the service runs; then the context switches of all
//     of each one's threads (voluntary and nonvoluntary, from
//     /proc/PID/task/*/status) are counted over -idle (a minute by
//     default). See docs/design/idle-wakeups.md.
//   - notify: -subscribers processes registered for one notification
//     (xpc.Notifier), -notify posts, each timed to the last handler's
//     call; against the same fan-out over raw AF_UNIX sockets in as many
//     processes, in alternating blocks (notify.go).
//
// Goals (from the issue that asked for xpcd): lookup+connect p50 at most
// 100 µs; cold launch to first reply at most the binary's own start plus
// 5 ms; with 1,000 jobs, start at most 200 ms and RSS at most 50 MiB; a
// post reaching 100 handlers in 100 processes, p50 at most 2 ms (issue 15).
//
// Other flags: -n, -cold, -jobs, -starts set the counts; -only picks
// measurements; -idle, -settle and -base set the idle measurement's; -gomaxprocs N runs this process, xpcd and the services
// with GOMAXPROCS=N (without it, xpcd runs on one processor, its own
// default, and the others on all); -repo DIR builds xpcd from another checkout; -keep
// keeps the temporary directory (binaries, roots, xpcd's logs);
// -cpuprofile profiles this process (the client side).
//
// -json FILE writes {"go", "goos", "goarch", "cpus", "started",
// "loadavg_start", "loadavg_end", "params": {...}, "rows": [{"name",
// "value", "unit", "goal", "met", "desc"}]}: one row per table line,
// "goal" (for example "<= 100") and "met" only on rows that have a goal.
// Row names end in their unit, if they have one (lookup_connect_p50_us,
// cold_over_own_start_p50_ms, jobs_rss_mib; switches_* are counts).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Row is one figure.
type Row struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Goal  string  `json:"goal,omitempty"`
	Met   *bool   `json:"met,omitempty"`
	Desc  string  `json:"desc"`
}

// Report is what -json writes.
type Report struct {
	Go      string    `json:"go"`
	OS      string    `json:"goos"`
	Arch    string    `json:"goarch"`
	CPUs    int       `json:"cpus"`
	Started time.Time `json:"started"`
	// The 1-, 5- and 15-minute load averages (/proc/loadavg) when the
	// measurements started and ended: how busy the machine was.
	LoadStart string         `json:"loadavg_start"`
	LoadEnd   string         `json:"loadavg_end"`
	Params    map[string]any `json:"params"`
	Rows      []Row          `json:"rows"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "xpcdbench:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("xpcdbench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "fewer iterations (a few seconds once built): -n 300 -cold 10 -starts 2")
	jsonFile := fs.String("json", "", "also write the results as JSON to `FILE`")
	n := fs.Int("n", 2000, "connections (and round trips) for lookup+connect")
	ncold := fs.Int("cold", 30, "cold launches")
	njobs := fs.Int("jobs", 1000, "jobs for the start-up measurement")
	starts := fs.Int("starts", 5, "xpcd starts with -jobs jobs (and as many with none)")
	nposts := fs.Int("notify", 500, "posts for the notify measurement")
	subs := fs.Int("subscribers", 100, "subscriber processes for the notify measurement")
	only := fs.String("only", "lookup,cold,jobs,notify", "comma-separated measurements to run: lookup, cold, jobs, notify, idle")
	idle := fs.Duration("idle", time.Minute, "the idle measurement's window")
	settle := fs.Duration("settle", 5*time.Second, "how long each xpcd of the idle measurement is left alone before its window")
	base := fs.String("base", "main", "the idle measurement's other xpcd: built from git revision `REV` of the repository (\"\": none)")
	repo := fs.String("repo", "", "build xpcd from `DIR`/cmd/xpcd (default: the repository this bench module is in)")
	keep := fs.Bool("keep", false, "keep the temporary directory (binaries, roots, xpcd logs)")
	procs := fs.Int("gomaxprocs", 0, "run this process, xpcd and the services with GOMAXPROCS=`N` (0: Go's default, the CPU count)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of this process (the client side) to `FILE`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *quick {
		setDefault(fs, "n", n, 300)
		setDefault(fs, "cold", ncold, 10)
		setDefault(fs, "starts", starts, 2)
		setDefault(fs, "notify", nposts, 100)
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		switch s = strings.TrimSpace(s); s {
		case "lookup", "cold", "jobs", "notify", "idle":
			want[s] = true
		case "":
		default:
			return fmt.Errorf("-only: unknown measurement %q (want lookup, cold, jobs, notify, idle)", s)
		}
	}
	if *n < 1 || *ncold < 1 || *njobs < 0 || *starts < 1 || *procs < 0 {
		return errors.New("-n, -cold and -starts must be at least 1, -jobs and -gomaxprocs at least 0")
	}
	if *idle <= 0 || *settle < 0 {
		return errors.New("-idle must be positive, -settle at least 0")
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A closed output pipe (| head) must fail a write, not kill us before
	// we have cleaned up.
	signal.Ignore(syscall.SIGPIPE)

	root, bench, err := findDirs(ctx)
	if err != nil {
		return err
	}
	if *repo != "" {
		root = *repo
	}
	tmp, err := os.MkdirTemp("", "xpcdbench-")
	if err != nil {
		return err
	}
	l := &lab{tmp: tmp, uid: os.Geteuid(), procs: *procs, services: map[int]bool{}}
	closed := false
	closeLab := func() {
		if closed {
			return
		}
		closed = true
		l.close(*keep)
		if *keep {
			fmt.Fprintln(os.Stderr, "xpcdbench: kept", tmp)
		}
	}
	defer closeLab()
	fmt.Fprintf(os.Stderr, "xpcdbench: building xpcd (%s) and the service (%s) into %s\n", root, bench, tmp)
	if err := l.build(ctx, root, bench); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	rep := Report{
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		Started: time.Now().UTC().Truncate(time.Second), LoadStart: loadavg(),
		Params: map[string]any{"n": *n, "cold": *ncold, "jobs": *njobs, "starts": *starts, "quick": *quick,
			"only": *only, "uid": l.uid, "gomaxprocs": *procs, "notify": *nposts, "subscribers": *subs,
			"idle_s": idle.Seconds(), "settle_s": settle.Seconds(), "base": *base},
	}
	add := func(r Row) { rep.Rows = append(rep.Rows, r) }
	goal := func(r Row, limit float64) Row {
		met := r.Value <= limit
		r.Goal, r.Met = fmt.Sprintf("<= %g", limit), &met
		return r
	}

	if want["lookup"] || want["cold"] {
		rootDir, err := l.newRoot("small")
		if err != nil {
			return err
		}
		if err := l.writeJob(rootDir, "bench.warm", "bench.warm"); err != nil {
			return err
		}
		if err := l.writeJob(rootDir, "bench.cold", "bench.cold"); err != nil {
			return err
		}
		in, _, err := l.start(ctx, rootDir)
		if err != nil {
			return err
		}
		if want["lookup"] {
			fmt.Fprintf(os.Stderr, "xpcdbench: lookup+connect, %d connections, and the floor before and after\n", *n)
			fr0, err := measureFloor(ctx, l, *n)
			if err != nil {
				return err
			}
			lr, err := measureLookup(ctx, l, in, "bench.warm", *n)
			if err != nil {
				return err
			}
			fr1, err := measureFloor(ctx, l, *n)
			if err != nil {
				return err
			}
			floor := (fr0.lookupConnect() + fr1.lookupConnect()) / 2
			floorRT := time.Duration(fr0.RoundtripP50+fr1.RoundtripP50) / 2
			p50, p99 := lr.connect.pct(50)-lr.roundtrip.pct(50), lr.connect.pct(99)-lr.roundtrip.pct(99)
			add(goal(Row{"lookup_connect_p50_us", us(p50), "µs", "", nil,
				"lookup+connect: connect_first_reply_p50 - roundtrip_p50"}, 100))
			add(Row{"lookup_connect_p99_us", us(p99), "µs", "", nil, "connect_first_reply_p99 - roundtrip_p99"})
			add(Row{"lookup_connect_shared_p50_us", us(lr.connectShared.pct(50) - lr.roundtrip.pct(50)), "µs", "", nil,
				"the same, the connections made WithBootstrap(one shared xpc.Bootstrap)"})
			add(Row{"floor_lookup_connect_p50_us", us(floor), "µs", "", nil,
				"the floor: the same brokered design with blocking system calls only (cmd/xpcdbench/floor); mean of a run before and one after"})
			add(Row{"lookup_connect_over_floor", float64(p50) / float64(floor), "x", "", nil,
				"lookup_connect_p50 / floor_lookup_connect_p50"})
			add(Row{"lookup_connect_shared_over_floor", float64(lr.connectShared.pct(50)-lr.roundtrip.pct(50)) / float64(floor), "x", "", nil,
				"lookup_connect_shared_p50 / floor_lookup_connect_p50"})
			add(Row{"floor_roundtrip_p50_us", us(floorRT), "µs", "", nil, "the floor's round trip: blocking send and receive"})
			add(Row{"connect_first_reply_p50_us", us(lr.connect.pct(50)), "µs", "", nil,
				"NewServiceConnection + Activate + first SendWithReply, to a running service"})
			add(Row{"connect_first_reply_p99_us", us(lr.connect.pct(99)), "µs", "", nil, "the same, p99"})
			add(Row{"roundtrip_p50_us", us(lr.roundtrip.pct(50)), "µs", "", nil, "SendWithReply on an established connection"})
			add(Row{"roundtrip_p99_us", us(lr.roundtrip.pct(99)), "µs", "", nil, "the same, p99"})
			add(Row{"step_bootstrap_dial_p50_us", us(lr.dial.pct(50)), "µs", "", nil, "step: DialUnix(bootstrap socket) + Activate"})
			add(Row{"step_lookup_request_p50_us", us(lr.lookup.pct(50)), "µs", "", nil, "step: socketpair + {op:lookup} to xpcd's reply"})
			add(Row{"step_first_roundtrip_p50_us", us(lr.first.pct(50)), "µs", "", nil, "step: first SendWithReply on the looked-up socket"})
			add(Row{"reused_lookup_request_p50_us", us(lr.reusedLookup.pct(50)), "µs", "", nil, "step: the lookup request on a bootstrap connection kept open"})
			add(Row{"reused_first_roundtrip_p50_us", us(lr.reusedFirst.pct(50)), "µs", "", nil, "step: then the first SendWithReply on the looked-up socket"})
			for _, c := range []struct {
				what string
				cpu  cpuSplit
			}{{"connect", lr.connectCPU}, {"roundtrip", lr.roundtripCPU}} {
				add(Row{"cpu_" + c.what + "_client_us", us(c.cpu.client), "µs", "", nil, "CPU time per " + c.what + ": client (this process)"})
				add(Row{"cpu_" + c.what + "_xpcd_us", us(c.cpu.xpcd), "µs", "", nil, "CPU time per " + c.what + ": xpcd"})
				add(Row{"cpu_" + c.what + "_service_us", us(c.cpu.service), "µs", "", nil, "CPU time per " + c.what + ": service"})
				add(Row{"switches_" + c.what + "_client", c.cpu.clientN, "", "", nil, "threads scheduled in per " + c.what + ": client"})
				add(Row{"switches_" + c.what + "_xpcd", c.cpu.xpcdN, "", "", nil, "threads scheduled in per " + c.what + ": xpcd"})
				add(Row{"switches_" + c.what + "_service", c.cpu.serviceN, "", "", nil, "threads scheduled in per " + c.what + ": service"})
			}
		}
		if want["cold"] {
			fmt.Fprintf(os.Stderr, "xpcdbench: cold launch, %d launches\n", *ncold)
			cr, err := measureCold(ctx, l, in, "bench.cold", "bench.cold", *ncold)
			if err != nil {
				return err
			}
			over := cr.cold.pct(50) - cr.ownMain.pct(50)
			add(goal(Row{"cold_over_own_start_p50_ms", ms(over), "ms", "", nil,
				"cold_first_reply_p50 - own_start_p50"}, 5))
			add(Row{"cold_first_reply_p50_ms", ms(cr.cold.pct(50)), "ms", "", nil,
				"service not running: new connection's first SendWithReply to the reply"})
			add(Row{"cold_first_reply_p90_ms", ms(cr.cold.pct(90)), "ms", "", nil, "the same, p90"})
			add(Row{"cold_first_reply_max_ms", ms(cr.cold.max()), "ms", "", nil, "the same, slowest"})
			add(Row{"own_start_p50_ms", ms(cr.ownMain.pct(50)), "ms", "", nil, "the service binary run directly: exec to main"})
			add(Row{"own_start_exit_p50_ms", ms(cr.ownExited.pct(50)), "ms", "", nil, "the same: exec to exit, reaped"})
			add(Row{"cold_step_to_main_p50_ms", ms(cr.toMain.pct(50)), "ms", "", nil, "cold step: send to the service's main"})
			add(Row{"cold_step_checkin_p50_ms", ms(cr.checkin.pct(50)), "ms", "", nil, "cold step: main to listener checked in"})
			add(Row{"cold_step_to_reply_p50_ms", ms(cr.toReply.pct(50)), "ms", "", nil, "cold step: checked in to the reply at the client"})
		}
		l.stop(in)
	}
	if want["jobs"] {
		fmt.Fprintf(os.Stderr, "xpcdbench: xpcd start, %d times with %d jobs and with none\n", *starts, *njobs)
		jr, err := measureJobs(ctx, l, *njobs, *starts, max(100, *n/4))
		if err != nil {
			return err
		}
		add(goal(Row{"jobs_start_p50_ms", ms(jr.start.pct(50)), "ms", "", nil,
			fmt.Sprintf("xpcd with %d jobs: exec to the answer of its first list request", jr.jobs)}, 200))
		add(Row{"jobs_start_max_ms", ms(jr.start.max()), "ms", "", nil, "the same, slowest"})
		add(Row{"jobs_start_cpu_p50_ms", ms(jr.startCPU.pct(50)), "ms", "", nil, "CPU time xpcd had used by then (all threads)"})
		add(goal(Row{"jobs_rss_mib", float64(median(jr.rssKiB)) / 1024, "MiB", "", nil,
			fmt.Sprintf("xpcd with %d jobs: VmRSS right after that answer", jr.jobs)}, 50))
		add(Row{"jobs_peak_rss_mib", float64(median(jr.peakKiB)) / 1024, "MiB", "", nil, "the same: VmHWM"})
		add(Row{"empty_start_p50_ms", ms(jr.emptyStart.pct(50)), "ms", "", nil, "xpcd with no jobs: exec to first list answer"})
		add(Row{"empty_start_cpu_p50_ms", ms(jr.emptyCPU.pct(50)), "ms", "", nil, "CPU time xpcd had used by then"})
		add(Row{"empty_rss_mib", float64(median(jr.emptyRSS)) / 1024, "MiB", "", nil, "xpcd with no jobs: VmRSS then"})
		add(Row{"jobs_list_p50_ms", ms(jr.list.pct(50)), "ms", "", nil, fmt.Sprintf("a list request answering %d jobs", jr.jobs)})
		if len(jr.lookup.connect) > 0 {
			add(Row{"jobs_lookup_connect_p50_us", us(jr.lookup.connect.pct(50) - jr.lookup.roundtrip.pct(50)), "µs", "", nil,
				fmt.Sprintf("lookup+connect with %d jobs loaded (%d connections)", jr.jobs, len(jr.lookup.connect))})
			add(Row{"jobs_connect_first_reply_p50_us", us(jr.lookup.connect.pct(50)), "µs", "", nil, "the same: connection + first reply"})
		}
	}

	if want["notify"] {
		fmt.Fprintf(os.Stderr, "xpcdbench: notify, %d posts to %d subscriber processes, and the raw fan-out\n", *nposts, *subs)
		rows, err := notifyRows(ctx, l, max(1, *subs), max(1, *nposts))
		if err != nil {
			return err
		}
		rep.Rows = append(rep.Rows, rows...)
	}

	if want["idle"] {
		rows, err := runIdle(ctx, l, root, *base, *settle, *idle)
		if err != nil {
			return err
		}
		rep.Rows = append(rep.Rows, rows...)
	}

	rep.LoadEnd = loadavg()
	closeLab() // before any output that could fail
	printTable(out, rep)
	if *jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// setDefault changes a flag's value unless it was given on the command
// line.
func setDefault(fs *flag.FlagSet, name string, p *int, v int) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	if !given {
		*p = v
	}
}

func printTable(out io.Writer, rep Report) {
	fmt.Fprintf(out, "xpcdbench: %s %s/%s, %d CPUs, %s, load average %s at start, %s at end\n",
		rep.Go, rep.OS, rep.Arch, rep.CPUs, rep.Started.Format(time.RFC3339), rep.LoadStart, rep.LoadEnd)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "name\tvalue\tunit\tgoal\tresult\t  what")
	for _, r := range rep.Rows {
		result := ""
		if r.Met != nil {
			result = "met"
			if !*r.Met {
				result = "MISSED"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t  %s\n", r.Name, format(r.Value), r.Unit, r.Goal, result, r.Desc)
	}
	tw.Flush()
}

// loadavg returns the three load averages of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func format(v float64) string {
	switch {
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
