package uevent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goxpc/xpc"
)

func msg(parts ...string) []byte { return []byte(strings.Join(parts, "\x00") + "\x00") }

var nullChange = msg("change@/devices/virtual/mem/null", "ACTION=change", "DEVPATH=/devices/virtual/mem/null",
	"SUBSYSTEM=mem", "SYNTH_UUID=0", "MAJOR=1", "MINOR=3", "DEVNAME=null", "DEVMODE=0666", "SEQNUM=4242")

func TestParse(t *testing.T) {
	ev, err := Parse(nullChange)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != "change" || ev.DevPath != "/devices/virtual/mem/null" || ev.Subsystem != "mem" || ev.Seq != 4242 {
		t.Errorf("got %+v", ev)
	}
	if ev.Props["DEVNAME"] != "null" || len(ev.Props) != 9 {
		t.Errorf("props %v", ev.Props)
	}
	if d := ev.Dictionary(); d.Len() != 9 {
		t.Errorf("dictionary %v", d)
	}
}

func TestParseRejects(t *testing.T) {
	many := []string{"add@/x", "ACTION=add"}
	for i := 0; i < MaxProps; i++ {
		many = append(many, "K"+strings.Repeat("X", i%5)+string(rune('A'+i%26))+string(rune('A'+i/26))+"=v")
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"no header":       msg("ACTION=add"),
		"no devpath":      msg("add@", "ACTION=add"),
		"not key=value":   msg("add@/x", "ACTION=add", "junk"),
		"empty key":       msg("add@/x", "ACTION=add", "=v"),
		"no action":       msg("add@/x", "SUBSYSTEM=mem"),
		"action differs":  msg("add@/x", "ACTION=remove"),
		"devpath differs": msg("add@/x", "ACTION=add", "DEVPATH=/y"),
		"bad seqnum":      msg("add@/x", "ACTION=add", "SEQNUM=x"),
		"libudev":         append([]byte("libudev\x00"), nullChange...),
		"too large":       bytes.Repeat([]byte("a"), MaxMessage+1),
		"too many":        msg(many...),
	} {
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestMatch(t *testing.T) {
	ev, _ := Parse(nullChange)
	for _, c := range []struct {
		desc *xpc.Dictionary
		want bool
	}{
		{xpc.Dict("SUBSYSTEM", "mem", "DEVNAME", "null"), true},
		{xpc.Dict("SUBSYSTEM", "mem", "DEVNAME", "zero"), false},
		{xpc.Dict("DEVPATH", "/devices/virtual/mem/*"), true},
		{xpc.Dict("DEVPATH", "/devices/virtual/mem"), false},
		{xpc.Dict("ACTION", "[ac]*"), true},
		{xpc.Dict("DRIVER", "*"), false}, // absent property
		{xpc.Dict(), false},
		{xpc.Dict("SUBSYSTEM", 1), false},
		{xpc.Dict("SUBSYSTEM", "[mem"), false},
	} {
		if got := Match(c.desc, ev); got != c.want {
			t.Errorf("Match(%v) = %v, want %v", c.desc, got, c.want)
		}
	}
	if _, err := Compile(xpc.Dict("SUBSYSTEM", "[")); !errors.Is(err, ErrBadDescriptor) {
		t.Errorf("bad pattern: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(nullChange)
	f.Add(msg("add@/devices/x", "ACTION=add", "SEQNUM=1"))
	f.Add([]byte("libudev\x00\xfe\xed\xca\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			return
		}
		if ev.Action == "" || ev.DevPath == "" || len(ev.Props) > MaxProps || ev.Props["ACTION"] != ev.Action {
			t.Fatalf("accepted %q as %+v", b, ev)
		}
		Match(xpc.Dict("ACTION", "*"), ev)
	})
}

// synthesize makes the kernel send a "change" uevent for /dev/null.
func synthesize(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/sys/devices/virtual/mem/null/uevent", []byte("change"), 0); err != nil {
		t.Skipf("cannot synthesize a uevent (needs root and sysfs): %v", err)
	}
}

// TestListenKernelEvent reads a real event, synthesized through sysfs, and
// leaves no descriptor or goroutine behind.
func TestListenKernelEvent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := openFDs(t)
	l, err := Listen()
	if err != nil {
		t.Skipf("no uevent socket here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	synthesize(t)
	for {
		ev, err := l.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if ev.DevPath == "/devices/virtual/mem/null" && ev.Action == "change" {
			if !Match(xpc.Dict("SUBSYSTEM", "mem", "DEVNAME", "null"), ev) || ev.Seq == 0 {
				t.Errorf("event %+v", ev)
			}
			break
		}
	}
	l.Close()
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before, %d after", before, after)
	}
}

// TestRunStops: Run returns once its context ends, whether it waits or
// not, and releases its socket.
func TestRunStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := openFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *Event, 16)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, func(ev *Event) {
			select {
			case got <- ev:
			default:
			}
		})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before, %d after", before, after)
	}
	// A Read after one whose context ended still works.
	l, err := Listen()
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	dead, stop := context.WithCancel(context.Background())
	stop()
	if _, err := l.Read(dead); !errors.Is(err, context.Canceled) {
		t.Errorf("read with an ended context: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	l.Read(short)
	live, cancel3 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel3()
	synthesize(t)
	for {
		ev, err := l.Read(live)
		if err != nil {
			t.Fatalf("read after a timed-out read: %v", err)
		}
		if ev.DevPath == "/devices/virtual/mem/null" {
			break
		}
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// BenchmarkParseMatch: what the listener spends on one kernel event, and
// on matching it against 64 descriptors that do not match (the common
// case: most events are for no job).
func BenchmarkParseMatch(b *testing.B) {
	var ms []Matcher
	for i := 0; i < 64; i++ {
		m, err := Compile(xpc.Dict("SUBSYSTEM", "block", "DEVNAME", "sd*", "ACTION", "add"))
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, m)
	}
	b.ReportAllocs()
	for b.Loop() {
		ev, err := Parse(nullChange)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			if m.Match(ev) {
				b.Fatal("matched")
			}
		}
	}
}
