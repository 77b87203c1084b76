package xpcd

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The label, the only field that may hold the separator, comes last and
// survives a round trip; a value with a field missing is no marker.
func TestMarkerRoundTrip(t *testing.T) {
	mk := marker{instance: "0123456789abcdef", nonce: "fedcba9876543210", fingerprint: strings.Repeat("ab", 32), reason: reasonKeepAlive,
		domain: "user/1000", label: "com.example.a:b"}
	got, ok := parseMarker(mk.String())
	if !ok || got != mk {
		t.Fatalf("parseMarker(%q) = %+v, %v", mk.String(), got, ok)
	}
	good := func(change func(*marker)) string { m := mk; change(&m); return m.String() }
	for _, bad := range []string{"", "a:b:c:d:e", ":n:f:r:system:l", "i:n:f:r::l", "i:n:f:r:system:",
		// Well-formed but for one field: any process may write any marker.
		good(func(m *marker) { m.instance = "0123456789ABCDEF" }),
		good(func(m *marker) { m.nonce = "short" }),
		good(func(m *marker) { m.fingerprint = "ab" }),
		good(func(m *marker) { m.reason = "because" }),
		good(func(m *marker) { m.domain = "user/01000" }),
		good(func(m *marker) { m.domain = "nowhere" }),
		good(func(m *marker) { m.label = strings.Repeat("x", 6<<20) }),
	} {
		if _, ok := parseMarker(bad); ok {
			t.Errorf("parseMarker(%.80q) accepted", bad)
		}
	}
	if instanceID("/a/state") == instanceID("/b/state") || instanceID("/a/state") != instanceID("/a/state/") {
		t.Error("instance ids do not follow the state directory")
	}
}

// The marker is found wherever it is among the first maxEnvironScan bytes
// of a process's environment (a shell may reorder it), and a value longer
// than any marker is none.
func TestMarkerOfReadsBoundedPrefix(t *testing.T) {
	mk := marker{instance: "0123456789abcdef", nonce: "fedcba9876543210", fingerprint: strings.Repeat("ab", 32),
		reason: reasonDemand, domain: "system", label: "test.marker"}
	start := func(env ...string) int {
		cmd := exec.Command("/bin/sleep", "30")
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		// Until its exec is through, the child's environment is ours,
		// then briefly empty.
		waitFor(t, "the exec", func() bool {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/environ")
			return err == nil && strings.HasPrefix(string(b), env[0]+"\x00")
		})
		return cmd.Process.Pid
	}
	if got, ok := markerOf(start(markerEnv+"="+mk.String(), "A=b")); !ok || got != mk {
		t.Errorf("a marker first: %+v %v", got, ok)
	}
	long := "L=" + strings.Repeat("y", 10<<10)
	if got, ok := markerOf(start("A=b", long, markerEnv+"="+mk.String(), "C=d")); !ok || got != mk {
		t.Errorf("a marker after other variables: %+v %v", got, ok)
	}
	var far []string // (os/exec keeps one variable of each name)
	for i := range maxEnvironScan/len(long) + 1 {
		far = append(far, strconv.Itoa(i)+long)
	}
	if _, ok := markerOf(start(append(far, markerEnv+"="+mk.String())...)); ok {
		t.Error("a marker past the bound was read")
	}
	huge := mk
	huge.label = strings.Repeat("x", 100<<10)
	if _, ok := markerOf(start(markerEnv + "=" + huge.String())); ok {
		t.Error("a marker longer than any xpcd writes was read")
	}
}
