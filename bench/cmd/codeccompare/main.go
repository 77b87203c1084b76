// Command codeccompare measures goxpc's struct codec against encoding/json,
// CBOR and MessagePack on the typical request of package codec, in one
// process, and prints a table with each codec's cost relative to goxpc.
//
// Usage:
//
//	go run ./cmd/codeccompare [-benchtime 100ms] [-count 3] [-json FILE]
//
// It first checks that every codec round-trips the request unchanged, then
// runs the same benchmark functions as `go test -bench . ./codec`: -count
// rounds over all codecs, each measurement lasting about -benchtime, and
// reports the fastest round of each. The defaults take about five seconds.
//
// -json writes {"rows":[{"name", "encode_ns", "decode_ns", "roundtrip_ns",
// "roundtrip_allocs", "ratio_vs_goxpc", ...}]}, with the Go version, CPU
// count and settings the figures came from. ratio_vs_goxpc is the codec's
// encode+decode time over goxpc's, so above 1 means slower than goxpc.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"runtime"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/goxpc/xpc/bench/codec"
)

// Row is one codec's measurements. Times are nanoseconds per operation;
// Ratio is RoundtripNS over goxpc's.
type Row struct {
	Name            string  `json:"name"`
	EncodeNS        float64 `json:"encode_ns"`
	DecodeNS        float64 `json:"decode_ns"`
	RoundtripNS     float64 `json:"roundtrip_ns"`
	RoundtripAllocs int64   `json:"roundtrip_allocs"`
	RoundtripBytes  int64   `json:"roundtrip_bytes"`
	BodyBytes       int     `json:"body_bytes"`
	Ratio           float64 `json:"ratio_vs_goxpc"`
}

// Report is what -json writes.
type Report struct {
	Go        string        `json:"go"`
	OS        string        `json:"goos"`
	Arch      string        `json:"goarch"`
	CPUs      int           `json:"cpus"`
	Benchtime time.Duration `json:"benchtime_ns"`
	Count     int           `json:"count"`
	Rows      []Row         `json:"rows"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "codeccompare:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("codeccompare", flag.ContinueOnError)
	jsonFile := fs.String("json", "", "also write the results as JSON to `FILE`")
	benchtime := fs.Duration("benchtime", 100*time.Millisecond, "time to run each measurement")
	count := fs.Int("count", 3, "rounds over all codecs; each figure is the fastest round's")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *benchtime <= 0 || *count <= 0 {
		return errors.New("-benchtime and -count must be positive")
	}
	// testing.Benchmark reads its duration from the test flags, which exist
	// only after testing.Init.
	testing.Init()
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		return err
	}

	rep := Report{
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		CPUs: runtime.GOMAXPROCS(0), Benchtime: *benchtime, Count: *count,
	}
	codecs := codec.Codecs()
	for _, c := range codecs {
		n, err := check(c)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
		rep.Rows = append(rep.Rows, Row{Name: c.Name(), BodyBytes: n})
	}
	// Rounds go over every codec in turn, so that a stretch of interference
	// from the rest of the machine hurts one round of all of them rather
	// than every round of one; the fastest round is the least disturbed.
	for range *count {
		for i, c := range codecs {
			if err := measure(c, &rep.Rows[i]); err != nil {
				return fmt.Errorf("%s: %w", c.Name(), err)
			}
		}
	}
	base := rep.Rows[0].RoundtripNS // goxpc comes first
	for i := range rep.Rows {
		rep.Rows[i].Ratio = round(rep.Rows[i].RoundtripNS/base, 100)
	}

	printTable(out, &rep)
	if *jsonFile != "" {
		b, err := json.MarshalIndent(&rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// check verifies that c round-trips the typical request unchanged, so that
// every codec is measured doing the same work, and returns its body size.
func check(c codec.Codec) (int, error) {
	want := codec.TypicalRequest()
	body, err := c.Encode(want)
	if err != nil {
		return 0, err
	}
	n := len(body)
	var got codec.Request
	if err := c.Decode(body, &got); err != nil {
		return 0, err
	}
	if !reflect.DeepEqual(&got, want) {
		return 0, fmt.Errorf("round trip changed the request: %+v", got)
	}
	return n, nil
}

// measure runs the three benchmarks on c once and keeps in row the fastest
// time seen so far for each.
func measure(c codec.Codec, row *Row) error {
	enc := testing.Benchmark(codec.BenchEncode(c))
	dec := testing.Benchmark(codec.BenchDecode(c))
	rt := testing.Benchmark(codec.BenchEncodeDecode(c))
	if enc.N == 0 || dec.N == 0 || rt.N == 0 {
		return errors.New("a benchmark failed")
	}
	keepMin(&row.EncodeNS, nsPerOp(enc))
	keepMin(&row.DecodeNS, nsPerOp(dec))
	keepMin(&row.RoundtripNS, nsPerOp(rt))
	row.RoundtripAllocs = rt.AllocsPerOp()
	row.RoundtripBytes = rt.AllocedBytesPerOp()
	return nil
}

func keepMin(dst *float64, v float64) {
	if *dst == 0 || v < *dst {
		*dst = v
	}
}

// nsPerOp is r.NsPerOp to a tenth of a nanosecond rather than a whole one.
func nsPerOp(r testing.BenchmarkResult) float64 {
	return round(float64(r.T.Nanoseconds())/float64(r.N), 10)
}

// round rounds x to the nearest 1/scale.
func round(x, scale float64) float64 { return math.Round(x*scale) / scale }

func printTable(out io.Writer, rep *Report) {
	fmt.Fprintf(out, "typical request (10 entries, 64-byte payload); %s %s/%s, %d CPUs; fastest of %d rounds of %v\n\n",
		rep.Go, rep.OS, rep.Arch, rep.CPUs, rep.Count, rep.Benchtime)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "codec   \tbody B\tencode ns/op\tdecode ns/op\tenc+dec ns/op\tenc+dec allocs/op\tenc+dec B/op\t\tvs xpc\t")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%-8s\t%d\t%.0f\t%.0f\t%.0f\t%d\t%d\t\t%s/xpc = %.1fx\t\n",
			r.Name, r.BodyBytes, r.EncodeNS, r.DecodeNS, r.RoundtripNS, r.RoundtripAllocs, r.RoundtripBytes, r.Name, r.Ratio)
	}
	tw.Flush()
	out.Write(buf.Bytes())
}
