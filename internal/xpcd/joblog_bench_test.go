package xpcd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkOutputLine is the cost of one line a service writes to its
// output FIFO: read, priority, xpcd's log (discarded), the job's log file
// and, with the journal, a datagram to a fake journal socket (its queue
// is short: the drops are reported).
func BenchmarkOutputLine(b *testing.B) {
	for _, withJournal := range []bool{false, true} {
		name := "file"
		if withJournal {
			name = "file+journal"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			sock := "-"
			if withJournal {
				sock = newFakeJournal(b).path
			}
			ls := newJobLogs(filepath.Join(dir, "logs"), 64<<20, sock, discardLogger())
			c := logsComponent{ls: ls}
			c.start(context.Background())
			defer c.close(context.Background())
			o, w, err := newOutput(filepath.Join(dir, "out"), outputSink{log: discardLogger(), logs: ls, dom: "user/0", label: "bench"}, [2]bool{true, false})
			if err != nil {
				b.Fatal(err)
			}
			o.start(1)
			line := strings.Repeat("x", 79) + "\n"
			b.SetBytes(int64(len(line)))
			b.ResetTimer()
			for range b.N {
				if _, err := w[0].WriteString(line); err != nil {
					b.Fatal(err)
				}
			}
			w[0].Close()
			select {
			case <-o.done:
			case <-time.After(time.Minute):
				b.Fatal("the reader did not finish")
			}
			b.StopTimer()
			if ls.journal != nil {
				b.ReportMetric(float64(ls.journal.drops.Load())/float64(b.N), "drops/line")
			}
		})
	}
}
