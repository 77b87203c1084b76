// Command ipcbench measures a send-with-reply of a ~100-byte message over
// goxpc connections beside raw AF_UNIX sockets, D-Bus (a private
// dbus-daemon), gRPC and ttrpc, client and server in separate processes,
// under GOMAXPROCS=1 and the default. It prints a table with each system's
// figures against goxpc's and the goals goxpc is held to.
//
// Usage:
//
//	ipcbench [-quick] [-json FILE] [-systems goxpc,raw-unix,...] [-procs 1,0]
//	         [-calls N] [-duration D] [-rounds N] [-bulk N] [-conns N] [-cpuprofile DIR]
//	ipcbench serve SYSTEM [-dir DIR] [-bus ADDR]   (the server child)
//
// The server for each system is this program started again as
// `ipcbench serve SYSTEM`, with GOMAXPROCS in its environment and a control
// socket on descriptor 3. bench/run builds and runs it;
// docs/design/benchmarks.md explains every figure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goxpc/xpc/bench/ipc"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(ipc.ServeMain(os.Args[2:]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ipcbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg ipc.Config
	jsonPath := flag.String("json", "", "also write the report as JSON to `FILE`")
	systems := flag.String("systems", strings.Join(ipc.Systems, ","), "comma-separated `list` of systems to measure")
	procs := flag.String("procs", "1,0", "comma-separated GOMAXPROCS `settings` for client and server; 0 is the default")
	flag.BoolVar(&cfg.Quick, "quick", false, "fewer iterations: the whole run in about 15 seconds (the full one takes about 90)")
	flag.IntVar(&cfg.Calls, "calls", 0, "timed sequential calls per system (default 20000; quick 2000)")
	flag.DurationVar(&cfg.Duration, "duration", 0, "duration of the concurrent phase (default 2s; quick 250ms)")
	flag.IntVar(&cfg.Rounds, "rounds", 0, "turns the ping phases are split into, systems taking turns (default 5; quick 2)")
	flag.IntVar(&cfg.BulkIters, "bulk", 0, "timed 16 MiB transfers per variant (default 20; quick 3)")
	flag.IntVar(&cfg.IdleConns, "conns", 0, "goxpc connections for the idle-memory measurement (default 10000; quick 1000)")
	flag.StringVar(&cfg.CPUProfileDir, "cpuprofile", "", "write client and server CPU profiles of the ping phases into `DIR`")
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	cfg.Systems = strings.Split(*systems, ",")
	for _, p := range strings.Split(*procs, ",") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return fmt.Errorf("bad -procs entry %q", p)
		}
		cfg.Procs = append(cfg.Procs, n)
	}
	if cfg.CPUProfileDir != "" {
		if err := os.MkdirAll(cfg.CPUProfileDir, 0o755); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rep, err := ipc.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if *jsonPath != "" {
		return rep.WriteJSON(*jsonPath)
	}
	return nil
}
