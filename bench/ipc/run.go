package ipc

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The systems, by the names used in rows and on the command line.
const (
	sysGoxpc = "goxpc"
	sysRaw   = "raw-unix"
	sysDBus  = "dbus-daemon"
	sysGRPC  = "grpc"
	sysTTRPC = "ttrpc"
	// sysRawHandoff, sysRawNoSched, sysRawEpoll and sysRawStream are
	// diagnostics, measured only when asked for.
	sysRawHandoff = "raw-handoff"
	sysRawNoSched = "raw-nosched"
	sysRawEpoll   = "raw-epoll"
	sysRawStream  = "raw-stream"
)

// Systems lists the systems measured by default, in the order they are
// reported.
var Systems = []string{sysGoxpc, sysRaw, sysDBus, sysGRPC, sysTTRPC}

// allSystems adds the diagnostic ones (see raw-handoff, raw-nosched,
// raw-epoll and raw-stream in raw.go).
var allSystems = append(slices.Clone(Systems), sysRawHandoff, sysRawNoSched, sysRawEpoll, sysRawStream)

// noFileLimit is the RLIMIT_NOFILE both processes ask for: the idle
// measurement holds three descriptors per goxpc connection in the client
// (socket, its duplicate of the endpoint, the server's pidfd) and two in the
// server.
const noFileLimit = 65536

// Config says what Run measures. Zero fields take the defaults of the full
// run, or of the quick one when Quick is set.
type Config struct {
	// Exe is the program started as the server child with
	// `serve SYSTEM ...` (ServeMain); default os.Executable().
	Exe string
	// Systems to measure; default all. dbus-daemon is skipped, and
	// listed in Report.Skipped, when dbus-daemon is not installed.
	Systems []string
	// Procs are the GOMAXPROCS settings, for client and server alike; 0
	// means the runtime's default. Default {1, 0}.
	Procs []int
	// Quick makes every measurement shorter (about 10 s in all).
	Quick bool
	// Calls is the number of timed sequential calls (20000; quick 2000),
	// after Warmup untimed ones (2000; quick 200).
	Calls, Warmup int
	// Rounds splits the sequential and the concurrent phase into turns:
	// each system in turn makes Calls/Rounds calls (then runs for
	// Duration/Rounds), Rounds times over (default 5; quick 2).
	Rounds int
	// Concurrency is the number of requesters sharing one connection (8);
	// Duration how long they run (2 s; quick 250 ms), after a tenth of it
	// as warm-up.
	Concurrency int
	Duration    time.Duration
	// BulkBytes is the size of the bulk transfer (16 MiB), BulkIters how
	// many are timed (20; quick 3), after one warm-up.
	BulkBytes, BulkIters int
	// IdleConns is the number of goxpc connections opened for the idle
	// memory measurement (10000; quick 1000).
	IdleConns int
	// CPUProfileDir, if set, receives CPU profiles of the sequential and
	// concurrent phases under each setting: client-gmpN.pprof for this
	// process (samples labelled system=NAME; use pprof -tagfocus) and
	// server-SYSTEM-gmpN.pprof for each server.
	CPUProfileDir string
	// Log receives progress and the server children's stderr; default
	// os.Stderr.
	Log io.Writer
}

func (c *Config) fill() error {
	if c.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.Exe = exe
	}
	if len(c.Systems) == 0 {
		c.Systems = Systems
	}
	for _, s := range c.Systems {
		if !slices.Contains(allSystems, s) {
			return fmt.Errorf("unknown system %q (have %s)", s, strings.Join(allSystems, ", "))
		}
	}
	if len(c.Procs) == 0 {
		c.Procs = []int{1, 0}
	}
	pick := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	pick(&c.Calls, 20000, 2000)
	pick(&c.Warmup, 2000, 200)
	pick(&c.Rounds, 5, 2)
	pick(&c.Concurrency, 8, 8)
	pick(&c.BulkBytes, 16<<20, 16<<20)
	pick(&c.BulkIters, 20, 3)
	pick(&c.IdleConns, 10000, 1000)
	if c.Duration == 0 {
		c.Duration = 2 * time.Second
		if c.Quick {
			c.Duration = 250 * time.Millisecond
		}
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	return nil
}

// Report is the whole result; WriteJSON writes it.
type Report struct {
	// Rows holds one row per system per GOMAXPROCS setting.
	Rows    []Row     `json:"rows"`
	Runs    []RunInfo `json:"runs"`
	Machine Machine   `json:"machine"`
	Params  Params    `json:"params"`
	// Skipped names systems that could not be measured, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// Row is one system's figures under one GOMAXPROCS setting. Latencies are
// microseconds; MB are 10^6 bytes. A null figure was not measured.
type Row struct {
	Name              string `json:"name"`
	GOMAXPROCS        int    `json:"gomaxprocs"`
	GOMAXPROCSDefault bool   `json:"gomaxprocs_default"`
	ServerGOMAXPROCS  int    `json:"server_gomaxprocs"`
	// Sequential send-with-reply of the ping on one connection.
	P50US  float64 `json:"p50_us"`
	P99US  float64 `json:"p99_us"`
	MeanUS float64 `json:"mean_us"`
	// CallsPerS: Config.Concurrency requesters sharing one connection.
	// Null for raw-unix (and the raw diagnostics), which has no request ids to
	// match replies.
	CallsPerS *float64 `json:"calls_per_s"`
	// CallsPerS8Conns (raw-unix and the raw diagnostics): the same requesters, each
	// on its own connection.
	CallsPerS8Conns *float64 `json:"calls_per_s_8conns,omitempty"`
	// MBPerS16M is the bulk figure: the buffer's size over the median
	// time of one call. goxpc: a shared-memory region the client
	// refills per call; the server maps it and reads every byte.
	// raw-unix: the buffer echoed through a SOCK_STREAM socket.
	MBPerS16M *float64 `json:"mb_per_s_16m"`
	// goxpc only: a fresh sealed region per call; the buffer as a data
	// object echoed back; as a data object one way (checksum reply).
	MBPerS16MShmSealed  *float64 `json:"mb_per_s_16m_shm_sealed,omitempty"`
	MBPerS16MDataEcho   *float64 `json:"mb_per_s_16m_data_echo,omitempty"`
	MBPerS16MDataOneWay *float64 `json:"mb_per_s_16m_data_oneway,omitempty"`
	// raw-unix only: the buffer one way, checksum reply.
	MBPerS16MOneWay *float64 `json:"mb_per_s_16m_oneway,omitempty"`
	// Heap allocations per sequential call in each process (the
	// D-Bus server figure is the Go server's, not dbus-daemon's).
	ClientAllocs float64 `json:"client_allocs_per_call"`
	ServerAllocs float64 `json:"server_allocs_per_call"`
	// CPU time (user + system, getrusage) per sequential call in each
	// process; the server figure includes its answering two control
	// requests per turn.
	ClientCPUUS float64 `json:"client_cpu_us_per_call"`
	ServerCPUUS float64 `json:"server_cpu_us_per_call"`
	// RequestBytes is the request as the system's codec produced it
	// (goxpc and raw-unix: the whole datagram); null where not known.
	RequestBytes *int `json:"request_bytes"`
	// IdleConnKiB (goxpc): RSS of client and server together per idle
	// connection; Idle has the details.
	IdleConnKiB *float64    `json:"idle_conn_kib,omitempty"`
	Idle        *IdleResult `json:"idle,omitempty"`
}

// IdleResult is what Config.IdleConns established, idle goxpc connections
// cost, per connection. Each connection has made one round trip.
type IdleResult struct {
	Conns int `json:"conns"`
	// Pairs is the number of client and server processes the
	// connections were spread over (see measureIdle).
	Pairs         int     `json:"process_pairs"`
	RSSKiB        float64 `json:"rss_kib"` // client + server
	ClientRSSKiB  float64 `json:"client_rss_kib"`
	ServerRSSKiB  float64 `json:"server_rss_kib"`
	HeapKiB       float64 `json:"go_heap_stack_kib"` // HeapInuse+StackInuse, client + server
	ClientHeapKiB float64 `json:"client_go_heap_stack_kib"`
	ServerHeapKiB float64 `json:"server_go_heap_stack_kib"`
	StackKiB      float64 `json:"go_stack_kib"` // the StackInuse part, client + server
	Goroutines    float64 `json:"goroutines"`   // client + server
	// KernelSlabKiB is the change in /proc/meminfo Slab, machine-wide:
	// the kernel's sockets and files, which no process's RSS shows.
	KernelSlabKiB float64 `json:"kernel_slab_kib"`
	OpenSeconds   float64 `json:"open_seconds"` // to open and use them all
}

// RunInfo is one GOMAXPROCS setting's comparison.
type RunInfo struct {
	GOMAXPROCS        int  `json:"gomaxprocs"`
	GOMAXPROCSDefault bool `json:"gomaxprocs_default"`
	// Ratios maps each other system to how it compares with goxpc.
	Ratios map[string]Ratio `json:"ratios"`
	Goals  []Goal           `json:"goals"`
}

// Ratio compares one system with goxpc; above 1, goxpc is better.
type Ratio struct {
	P50       *float64 `json:"p50"`         // its p50 / goxpc's
	P99       *float64 `json:"p99"`         // its p99 / goxpc's
	CallsPerS *float64 `json:"calls_per_s"` // goxpc's calls/s / its
}

// Goal is one of the targets goxpc is held to.
type Goal struct {
	Goal   string   `json:"goal"`
	Value  *float64 `json:"value"` // null when a figure is missing
	Target float64  `json:"target"`
	AtMost bool     `json:"at_most"` // met when Value <= Target, else >=
	Met    *bool    `json:"met"`
}

// Machine describes where the figures come from.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	OS       string `json:"goos"`
	Arch     string `json:"goarch"`
}

// Params are the settings of the run.
type Params struct {
	Quick             bool    `json:"quick"`
	Calls             int     `json:"calls"`
	Warmup            int     `json:"warmup"`
	Rounds            int     `json:"rounds"`
	Concurrency       int     `json:"concurrency"`
	ConcurrentSeconds float64 `json:"concurrent_seconds"`
	BulkBytes         int     `json:"bulk_bytes"`
	BulkIters         int     `json:"bulk_iters"`
	IdleConns         int     `json:"idle_conns"`
	PayloadBytes      int     `json:"payload_bytes"`
}

// Run measures every configured system under every GOMAXPROCS setting, each
// server in a child process.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if _, err := raiseNoFile(noFileLimit); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ipcbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	rep := &Report{
		Machine: machine(),
		Params: Params{
			Quick: cfg.Quick, Calls: cfg.Calls, Warmup: cfg.Warmup, Rounds: cfg.rounds(),
			Concurrency: cfg.Concurrency, ConcurrentSeconds: cfg.Duration.Seconds(),
			BulkBytes: cfg.BulkBytes, BulkIters: cfg.BulkIters, IdleConns: cfg.IdleConns,
			PayloadBytes: payloadLen,
		},
	}
	systems := cfg.Systems
	var bus *dbusDaemon
	if slices.Contains(systems, sysDBus) {
		bus, err = startDBusDaemon(dir, cfg.Log)
		if err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", sysDBus, err))
			systems = slices.DeleteFunc(slices.Clone(systems), func(s string) bool { return s == sysDBus })
		} else {
			defer bus.stop()
		}
	}

	initial := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(initial)
	for _, p := range cfg.Procs {
		n := p
		if p <= 0 {
			n = initial
		}
		runtime.GOMAXPROCS(n)
		fmt.Fprintf(cfg.Log, "ipcbench: GOMAXPROCS=%d: %s\n", n, strings.Join(systems, ", "))
		rows, err := runSetting(ctx, &cfg, systems, p, n, dir, bus)
		if err != nil {
			return nil, fmt.Errorf("GOMAXPROCS=%d: %w", n, err)
		}
		if i := slices.IndexFunc(rows, func(r Row) bool { return r.Name == sysGoxpc }); i >= 0 && cfg.IdleConns > 0 {
			fmt.Fprintf(cfg.Log, "ipcbench: GOMAXPROCS=%d: %d idle goxpc connections\n", n, cfg.IdleConns)
			idle, err := measureIdle(&cfg, p, dir)
			if err != nil {
				return nil, fmt.Errorf("idle connections, GOMAXPROCS=%d: %w", n, err)
			}
			rows[i].Idle = idle
			rows[i].IdleConnKiB = &idle.RSSKiB
		}
		for i := range rows {
			rows[i].GOMAXPROCS, rows[i].GOMAXPROCSDefault = n, p <= 0
		}
		rep.Rows = append(rep.Rows, rows...)
		rep.Runs = append(rep.Runs, compare(rows, n, p <= 0))
	}
	return rep, nil
}

// requestBytes is the size of one request as the system's codec makes it.
func requestBytes(name string) *int {
	var n int
	switch name {
	case sysGoxpc, sysRaw, sysRawHandoff, sysRawNoSched, sysRawEpoll, sysRawStream:
		b, err := xpc.Encode(pingDict(1 << 40))
		if err != nil {
			return nil
		}
		n = len(b) + 16 // the frame header (docs/PROTOCOL.md §7)
	case sysGRPC:
		p := ping{Method: pingMethod, Seq: 1 << 40, Payload: payload}
		n = len(p.appendBinary(nil))
	case sysTTRPC:
		p := ping{Method: pingMethod, Seq: 1 << 40, Payload: payload}
		n = proto.Size(&wrapperspb.BytesValue{Value: p.appendBinary(nil)})
	default:
		return nil
	}
	return &n
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
