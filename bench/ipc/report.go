package ipc

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// compare computes one setting's ratios against goxpc and checks the goals.
func compare(rows []Row, procs int, def bool) RunInfo {
	ri := RunInfo{GOMAXPROCS: procs, GOMAXPROCSDefault: def, Ratios: map[string]Ratio{}}
	by := map[string]*Row{}
	for i := range rows {
		by[rows[i].Name] = &rows[i]
	}
	x := by[sysGoxpc]
	if x == nil {
		return ri
	}
	for _, r := range rows {
		if r.Name == sysGoxpc {
			continue
		}
		ri.Ratios[r.Name] = Ratio{
			P50:       div(r.P50US, x.P50US),
			P99:       div(r.P99US, x.P99US),
			CallsPerS: divp(x.CallsPerS, r.CallsPerS),
		}
	}
	p50 := func(name string) *float64 {
		if r := by[name]; r != nil {
			return &r.P50US
		}
		return nil
	}
	cps := func(name string) *float64 {
		if r := by[name]; r != nil {
			return r.CallsPerS
		}
		return nil
	}
	ri.Goals = []Goal{
		goal("goxpc round-trip p50 at most 1.3x raw-unix's", divp(p50(sysGoxpc), p50(sysRaw)), 1.3, true),
		goal("round trip at least 7x faster than D-Bus (p50 ratio)", divp(p50(sysDBus), p50(sysGoxpc)), 7, false),
		goal("round trip at least 3x faster than gRPC (p50 ratio)", divp(p50(sysGRPC), p50(sysGoxpc)), 3, false),
		goal("round trip at least 3x faster than ttrpc (p50 ratio)", divp(p50(sysTTRPC), p50(sysGoxpc)), 3, false),
		goal("8-concurrent calls/s at least 3x ttrpc's", divp(cps(sysGoxpc), cps(sysTTRPC)), 3, false),
		goal("16 MiB by shared memory at least 4x the MB/s of echoing it through the socket", divp(x.MBPerS16M, x.MBPerS16MDataEcho), 4, false),
		goal("idle connection at most 16 KiB (RSS, client + server)", x.IdleConnKiB, 16, true),
	}
	return ri
}

func div(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	v := a / b
	return &v
}

func divp(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	return div(*a, *b)
}

func goal(text string, v *float64, target float64, atMost bool) Goal {
	g := Goal{Goal: text, Value: v, Target: target, AtMost: atMost}
	if v != nil {
		met := *v >= target
		if atMost {
			met = *v <= target
		}
		g.Met = &met
	}
	return g
}

// WriteJSON writes the report to path, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the figures, one table per GOMAXPROCS setting, with the
// ratios against goxpc and the goals.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "machine: %d CPUs, %s, Linux %s, %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.Go)
	fmt.Fprintf(w, "ping: %d sequential calls after %d warm-up; %d requesters for %.2gs; bulk %d MiB x %d\n",
		r.Params.Calls, r.Params.Warmup, r.Params.Concurrency, r.Params.ConcurrentSeconds, r.Params.BulkBytes>>20, r.Params.BulkIters)
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	for _, run := range r.Runs {
		def := ""
		if run.GOMAXPROCSDefault {
			def = " (default)"
		}
		fmt.Fprintf(w, "\nGOMAXPROCS=%d%s, client and server\n", run.GOMAXPROCS, def)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "system\tp50 µs\tp99 µs\tcalls/s x8\tMB/s 16MiB\tp50 / goxpc\tgoxpc calls/s / its\tallocs/call cli+srv\tCPU µs/call cli+srv\t")
		var x *Row
		for i := range r.Rows {
			row := &r.Rows[i]
			if row.GOMAXPROCS != run.GOMAXPROCS || row.GOMAXPROCSDefault != run.GOMAXPROCSDefault {
				continue
			}
			if row.Name == sysGoxpc {
				x = row
			}
			ratio := run.Ratios[row.Name]
			p50r, cpsr := "1", "1"
			if row.Name != sysGoxpc {
				p50r, cpsr = fmtp(ratio.P50, "%.2f"), fmtp(ratio.CallsPerS, "%.2f")
			}
			cps := fmtp(row.CallsPerS, "%.0f")
			if row.CallsPerS8Conns != nil {
				cps = fmt.Sprintf("(8 conns: %.0f)", *row.CallsPerS8Conns)
				cpsr = "-"
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%.1f+%.1f\t%.1f+%.1f\t\n", row.Name, row.P50US, row.P99US, cps,
				fmtp(row.MBPerS16M, "%.0f"), p50r, cpsr, row.ClientAllocs, row.ServerAllocs, row.ClientCPUUS, row.ServerCPUUS)
		}
		tw.Flush()
		if x != nil && x.MBPerS16M != nil {
			fmt.Fprintf(w, "goxpc 16 MiB: shared memory reused %s MB/s, fresh sealed %s MB/s; data echoed %s MB/s, data one way %s MB/s\n",
				fmtp(x.MBPerS16M, "%.0f"), fmtp(x.MBPerS16MShmSealed, "%.0f"), fmtp(x.MBPerS16MDataEcho, "%.0f"), fmtp(x.MBPerS16MDataOneWay, "%.0f"))
		}
		for i := range r.Rows {
			row := &r.Rows[i]
			if row.Name == sysRaw && row.GOMAXPROCS == run.GOMAXPROCS && row.GOMAXPROCSDefault == run.GOMAXPROCSDefault && row.MBPerS16M != nil {
				fmt.Fprintf(w, "raw-unix 16 MiB over SOCK_STREAM: echoed %.0f MB/s, one way %s MB/s\n", *row.MBPerS16M, fmtp(row.MBPerS16MOneWay, "%.0f"))
			}
		}
		if x != nil && x.Idle != nil {
			id := x.Idle
			fmt.Fprintf(w, "goxpc idle connections (%d, %d process pairs): %.1f KiB RSS each (client %.1f + server %.1f); Go heap+stacks %.1f KiB (%.1f + %.1f; stacks %.1f); %.1f goroutines; kernel slab %.1f KiB (machine-wide)\n",
				id.Conns, id.Pairs, id.RSSKiB, id.ClientRSSKiB, id.ServerRSSKiB, id.HeapKiB, id.ClientHeapKiB, id.ServerHeapKiB, id.StackKiB, id.Goroutines, id.KernelSlabKiB)
		}
		for _, g := range run.Goals {
			status := "not measured"
			if g.Met != nil {
				status = "MISSED"
				if *g.Met {
					status = "met"
				}
			}
			fmt.Fprintf(w, "  goal %-80s %8s  %s\n", g.Goal, fmtp(g.Value, "%.2f"), status)
		}
	}
	return nil
}

func fmtp(v *float64, f string) string {
	if v == nil {
		return "-"
	}
	return strings.TrimSpace(fmt.Sprintf(f, *v))
}
