package xpcd

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goxpc/xpc/launchd"
)

// Every process xpcd starts carries a marker in its environment, set
// before the fork: XPCD_INSTANCE=ID:NONCE:FINGERPRINT:REASON:DOMAIN:LABEL.
// ID names the xpcd instance (a hash of its state directory, so that a
// private XPCD_ROOT instance never takes another instance's processes),
// NONCE this one launch. A restarted xpcd finds by it the processes it
// started whose record never reached processes.json (xpcd was killed
// between the fork and the write, or the write failed), and adopts or
// stops them (supervisor.adoptMarked). The marker is read from
// /proc/PID/environ, which shows the environment the process was started
// with unless it rewrites that memory itself; a process that does, or that
// makes itself a session leader, is not found this way.
const markerEnv = "XPCD_INSTANCE"

// marker is the value of markerEnv.
type marker struct {
	instance    string
	nonce       string
	fingerprint string
	reason      string
	domain      string
	label       string
}

// String is the marker as the environment holds it. The label comes last:
// it is the only field that could hold the separator.
func (mk marker) String() string {
	return strings.Join([]string{mk.instance, mk.nonce, mk.fingerprint, mk.reason, mk.domain, mk.label}, ":")
}

// parseMarker reads a marker, and only a well-formed one: any process may
// put anything in its environment, and a restarted xpcd reads them all.
func parseMarker(s string) (marker, bool) {
	if len(s) > maxMarkerLen {
		return marker{}, false
	}
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || !isHex(f[0], 16) || !isHex(f[1], 16) || (f[2] != "" && !isHex(f[2], 64)) ||
		!launchReasons[f[3]] || launchd.CheckLabel(f[5]) != nil {
		return marker{}, false
	}
	if dom, _, err := ParseDomain(f[4]); (err != nil || dom != f[4]) && !isAppDomainName(f[4]) { // apps_domain.go
		return marker{}, false
	}
	return marker{instance: f[0], nonce: f[1], fingerprint: f[2], reason: f[3], domain: f[4], label: f[5]}, true
}

// maxMarkerLen bounds a marker: two 16-digit ids, a 64-digit fingerprint,
// a reason, a domain and a label of at most launchd.MaxLabelLen bytes.
const maxMarkerLen = 16 + 16 + 64 + 32 + 32 + launchd.MaxLabelLen + 5

// launchReasons are the launch reasons a marker may hold.
var launchReasons = map[string]bool{
	reasonDemand: true, reasonRunAtLoad: true, reasonKeepAlive: true, reasonKickstart: true, reasonUpgrade: true,
	reasonInterval: true, reasonCalendar: true, reasonWatchPath: true, reasonQueue: true, reasonActivity: true,
	reasonEvent: true,
}

// isHex reports whether s is n lower-case hexadecimal digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// instanceID names the xpcd instance whose state lives in stateDir.
func instanceID(stateDir string) string {
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return hex.EncodeToString(sum[:8])
}

// newNonce returns a fresh launch nonce.
func newNonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// markedProcess is a running process that carries an instance's marker and
// leads its own process group but not its session, as every process xpcd
// starts does (and its descendants, as a rule, do not).
type markedProcess struct {
	pid       int
	startTime uint64
	uid       uint32 // real uid
	mark      marker
	// output is the output FIFO (in the launcher's output directory) its
	// standard output or error goes to, "" if none.
	output string
}

// record is the process record a marked process would have had.
func (p markedProcess) record() processRecord {
	return processRecord{
		Domain: p.mark.domain, Label: p.mark.label, PID: p.pid, StartTime: p.startTime,
		Since: startedAt(p.startTime), Reason: p.mark.reason, Fingerprint: p.mark.fingerprint,
		Output: p.output, Marker: p.mark.String(), Runs: 1,
	}
}

// scanMarked lists the processes carrying instance's marker, oldest first,
// xpcd itself excepted. /proc entries it may not read (another user's,
// when xpcd is not root) are skipped: such processes are not xpcd's.
func scanMarked(instance, outputDir string) ([]markedProcess, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	self := os.Getpid()
	var out []markedProcess
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		p, ok := readMarked(pid, instance)
		if !ok {
			continue
		}
		p.output = outputOf(pid, outputDir)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b markedProcess) int {
		return cmp.Or(cmp.Compare(a.startTime, b.startTime), cmp.Compare(a.pid, b.pid))
	})
	return out, nil
}

// readMarked reads pid's marker, if it carries instance's and leads its
// own process group but not its session.
func readMarked(pid int, instance string) (markedProcess, bool) {
	st, err := readStat(pid)
	if err != nil || st.pgid != pid || st.sid == pid {
		return markedProcess{}, false
	}
	mk, ok := markerOf(pid)
	if !ok || mk.instance != instance {
		return markedProcess{}, false
	}
	uid, err := realUID(pid)
	if err != nil {
		return markedProcess{}, false
	}
	return markedProcess{pid: pid, startTime: st.start, uid: uid, mark: mk}, true
}

// maxEnvironScan bounds how much of a process's environment markerOf
// reads looking for the marker.
const maxEnvironScan = 64 << 10

// markerOf returns the marker in pid's environment. environment puts it
// first, but a program may reorder its environment when it executes
// another (dash does, for a script that ends in exec), so the variable is
// looked for among the first maxEnvironScan bytes; a value longer than any
// marker is none.
func markerOf(pid int) (marker, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return marker{}, false
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.LimitReader(f, maxEnvironScan), len(markerEnv)+1+maxMarkerLen+1)
	prefix := []byte(markerEnv + "=")
	for {
		kv, err := r.ReadSlice(0)
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			if err != nil {
				// Longer than any marker, or cut short by the bound.
				return marker{}, false
			}
			return parseMarker(string(v[:len(v)-1]))
		}
		for err == bufio.ErrBufferFull {
			_, err = r.ReadSlice(0) // the rest of a long variable
		}
		if err != nil {
			return marker{}, false
		}
	}
}

// hasMarker reports whether pid's environment holds exactly the marker mk.
func hasMarker(pid int, mk string) bool {
	got, ok := markerOf(pid)
	return ok && got.String() == mk
}

// realUID returns pid's real uid, from /proc/PID/status.
func realUID(pid int) (uint32, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				break
			}
			n, err := strconv.ParseUint(string(f[0]), 10, 32)
			return uint32(n), err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no Uid", pid)
}

// outputOf returns the output FIFO in dir that pid's standard output or
// error is, "" if neither is.
func outputOf(pid int, dir string) string {
	if dir == "" {
		return ""
	}
	for _, fd := range []string{"1", "2"} {
		p, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd)
		if err == nil && filepath.Dir(p) == filepath.Clean(dir) {
			return p
		}
	}
	return ""
}

// startedAt converts a start time in clock ticks since boot (USER_HZ, 100
// on Linux) to a time; the zero time if the boot time is unknown.
func startedAt(ticks uint64) time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			boot, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
			if err != nil {
				break
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / 100)
		}
	}
	return time.Time{}
}
