package xpc

import (
	"fmt"
	"os"
	"testing"
)

// The per-message cost of a requirement against its floor, measured in one
// run: `go test -run '^$' -bench 'ProcExe|ExeChanged|Recheck' -count 5`.
// The peer is the test process itself, through a socket pair.

// BenchmarkReadlinkProcExe is the floor: one look at the peer's executable
// through /proc, a readlink of /proc/PID/exe.
func BenchmarkReadlinkProcExe(b *testing.B) {
	link := fmt.Sprintf("/proc/%d/exe", os.Getpid())
	for b.Loop() {
		if _, err := os.Readlink(link); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeerExeChanged: exeChanged after a Check that examined the
// executable.
func BenchmarkPeerExeChanged(b *testing.B) {
	p := selfPeer(b)
	if err := MustParseRequirement("exe " + quoteValue(benchExe(b))).Check(p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if changed, err := p.exeChanged(); changed || err != nil {
			b.Fatal(changed, err)
		}
	}
}

// BenchmarkRecheck is what a message (or a batch read in one wake-up)
// costs on a connection with a requirement: one that examines the
// executable, and one met by the credentials alone.
func BenchmarkRecheck(b *testing.B) {
	for _, req := range []string{"exe " + quoteValue(benchExe(b)), fmt.Sprintf("uid %d", os.Getuid())} {
		b.Run(req[:3], func(b *testing.B) {
			p := selfPeer(b)
			r := MustParseRequirement(req)
			if err := r.Check(p); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := r.recheck(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequirementCheck is a full Check of a requirement that reads
// the executable and the cgroup, as made at connect and after an exec.
func BenchmarkRequirementCheck(b *testing.B) {
	p := selfPeer(b)
	r := MustParseRequirement(fmt.Sprintf("uid %d and exe %s and unit /", os.Getuid(), quoteValue(benchExe(b))))
	for b.Loop() {
		if err := r.Check(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequirement parses a typical requirement.
func BenchmarkParseRequirement(b *testing.B) {
	const s = `identifier org.example.app and team ABCDE12345 and (uid 0 or group admin) and not exe "/tmp/x y"`
	for b.Loop() {
		if _, err := ParseRequirement(s); err != nil {
			b.Fatal(err)
		}
	}
}

func benchExe(b *testing.B) string {
	b.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		b.Fatal(err)
	}
	return exe
}
