// Command typedcompare measures a call through a generated interface against
// the same call made by hand (package typedcall): SendWithReply with a
// hand-built dictionary, and SendWithReply with ValueOf and ObjectInto, on
// the same request and reply, in one process, and prints ns/op and
// allocs/op with the generated call's cost relative to the others.
//
// Usage:
//
//	go run ./cmd/typedcompare [-benchtime 200ms] [-count 10]
//
// It runs -count rounds, each measuring the three in turn for about
// -benchtime, so that the machine's load falls on all of them alike, and
// reports each one's median and fastest round. The goals of typed
// services: the generated call within 10% of the hand-built one, and no more
// allocations than the ValueOf + ObjectInto one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/goxpc/xpc/bench/typedcall"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "typedcompare:", err)
		os.Exit(1)
	}
}

// row is one case's measurements: ns/op of every round, allocs/op.
type row struct {
	name   string
	ns     []float64
	allocs int64
	bytes  int64
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("typedcompare", flag.ContinueOnError)
	benchtime := fs.Duration("benchtime", 200*time.Millisecond, "time to run each measurement")
	count := fs.Int("count", 10, "rounds over the three cases")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 || *benchtime <= 0 || *count <= 0 {
		return errors.New("usage: typedcompare [-benchtime D] [-count N], both positive")
	}
	// testing.Benchmark reads its duration from the test flags, which exist
	// only after testing.Init.
	testing.Init()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		return err
	}
	cases := typedcall.Cases()
	rows := make([]row, len(cases))
	for range *count {
		for i, c := range cases {
			r := testing.Benchmark(typedcall.Bench(c))
			if r.N == 0 {
				return fmt.Errorf("%s: the benchmark failed", c.Name)
			}
			rows[i].name = c.Name
			rows[i].ns = append(rows[i].ns, float64(r.T.Nanoseconds())/float64(r.N))
			rows[i].allocs, rows[i].bytes = r.AllocsPerOp(), r.AllocedBytesPerOp()
		}
	}
	fmt.Fprintf(out, "one call, %s %s/%s, GOMAXPROCS %d; %d rounds of %v\n\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), *count, *benchtime)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tmedian ns/op\tfastest ns/op\tallocs/op\tB/op\tgenerated / this (median)\t")
	gen := median(rows[0].ns)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%d\t%d\t%.3f\t\n", r.name, median(r.ns), slices.Min(r.ns), r.allocs, r.bytes, gen/median(r.ns))
	}
	tw.Flush()
	hand, values := rows[1], rows[2]
	fmt.Fprintf(out, "\ngoal: generated <= 1.10 x hand-built: %.3f (%s)\n", gen/median(hand.ns), met(gen <= 1.10*median(hand.ns)))
	fmt.Fprintf(out, "goal: generated allocs <= values allocs: %d <= %d (%s)\n", rows[0].allocs, values.allocs, met(rows[0].allocs <= values.allocs))
	return nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
