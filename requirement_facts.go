package xpc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/goxpc/xpc/codesign"
	"golang.org/x/sys/unix"
)

// exeVerifier is what Check asks of code signing about the peer's
// executable, f (open for reading; read it with ReadAt) found at path.
// Peer.verifier holds one; tests put a fake there.
type exeVerifier interface {
	Verify(f *os.File, path string) (*codesign.Info, error)
	Digest(f *os.File) ([32]byte, error)
}

// defaultVerifier verifies signatures and digests with codesign.Default,
// which caches both by the file's identity.
type defaultVerifier struct{}

func (defaultVerifier) Verify(f *os.File, path string) (*codesign.Info, error) {
	return codesign.Default().Verify(f, path)
}

func (defaultVerifier) Digest(f *os.File) ([32]byte, error) {
	return codesign.Default().Digest(f)
}

// lazy is a fact read at most once, on first use.
type lazy[T any] struct {
	v    T
	err  error
	done bool
}

func (l *lazy[T]) get(load func() (T, error)) (T, error) {
	if !l.done {
		l.v, l.err = load()
		l.done = true
	}
	return l.v, l.err
}

// exeFact is the peer's executable as a Check examined it: the path it
// was run from (/proc/PID/exe's text), its identity, and an O_PATH
// descriptor for the file itself.
type exeFact struct {
	path string
	id   exeID
	fd   int
}

// peerFacts is what one Check learns of a peer beyond its credentials,
// each fact read when a clause first needs it.
type peerFacts struct {
	p      *Peer
	v      exeVerifier
	exe    lazy[exeFact]
	file   lazy[*os.File] // the executable, open for reading
	groups lazy[[]uint32]
	cgroup lazy[string]
	sig    lazy[*codesign.Info]
	digest lazy[[32]byte]
}

// newPeerFacts gathers p's facts with v, or, if v is nil, with p's own
// verifier (a test's fake), or else codesign.Default().
func newPeerFacts(p *Peer, v exeVerifier) *peerFacts {
	f := &peerFacts{p: p, v: v}
	if f.v == nil {
		f.v = p.verifier
	}
	if f.v == nil {
		f.v = defaultVerifier{}
	}
	return f
}

// record keeps, for exeChanged, what a Check that passed examined of the
// executable, or forgets it when the Check failed.
func (f *peerFacts) record(passed bool) {
	if !passed {
		f.p.passed.Store(nil)
		return
	}
	// An executable that could not be examined was not needed.
	rec := &exeRecord{examined: f.exe.done && f.exe.err == nil}
	if rec.examined {
		rec.id = f.exe.v.id
	}
	f.p.passed.Store(rec)
}

// close releases the descriptors the facts hold.
func (f *peerFacts) close() {
	if f.exe.done && f.exe.err == nil {
		unix.Close(f.exe.v.fd)
	}
	if f.file.done && f.file.err == nil {
		f.file.v.Close()
	}
}

// errExeChanging: the peer executed program after program while its
// executable was being looked at.
var errExeChanging = errors.New("the peer executed another program while it was checked")

// loadExe examines the peer's executable.
func (f *peerFacts) loadExe() (exeFact, error) {
	for range 3 {
		x, stable, err := f.p.openExe()
		if err != nil {
			return exeFact{}, err
		}
		if stable {
			return x, nil
		}
		unix.Close(x.fd)
	}
	return exeFact{}, errExeChanging
}

// loadFile opens the examined executable for reading (through its O_PATH
// descriptor, so it is the same file).
func (f *peerFacts) loadFile() (*os.File, error) {
	x, err := f.exe.get(f.loadExe)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(x.fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the executable %s: %w", x.path, err)
	}
	return os.NewFile(uintptr(fd), x.path), nil
}

func (f *peerFacts) loadSig() (*codesign.Info, error) {
	file, err := f.file.get(f.loadFile)
	if err != nil {
		return nil, err
	}
	return f.v.Verify(file, f.exe.v.path)
}

func (f *peerFacts) loadDigest() ([32]byte, error) {
	file, err := f.file.get(f.loadFile)
	if err != nil {
		return [32]byte{}, err
	}
	return f.v.Digest(file)
}

// maxProcFile bounds what is read of a /proc file.
const maxProcFile = 64 << 10

// readProcFile reads name from the peer's /proc directory, refusing what
// a process that had exited meanwhile may have left.
func (f *peerFacts) readProcFile(name string) ([]byte, error) {
	file, err := f.p.openProcFile(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxProcFile))
	if f.p.exited() {
		return nil, errPeerExited
	}
	if err != nil {
		return nil, fmt.Errorf("/proc/%d/%s: %w", f.p.PID, name, err)
	}
	return b, nil
}

// procLine returns the rest of the first line of b that starts with
// prefix.
func procLine(b []byte, prefix string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return rest, true
		}
	}
	return "", false
}

// loadGroups reads the peer's supplementary groups ("Groups:" in status).
func (f *peerFacts) loadGroups() ([]uint32, error) {
	b, err := f.readProcFile("status")
	if err != nil {
		return nil, err
	}
	line, ok := procLine(b, "Groups:")
	if !ok {
		return nil, fmt.Errorf("/proc/%d/status has no Groups line", f.p.PID)
	}
	var gs []uint32
	for _, w := range strings.Fields(line) {
		g, err := strconv.ParseUint(w, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status: group %q: %w", f.p.PID, w, err)
		}
		gs = append(gs, uint32(g))
	}
	return gs, nil
}

// loadCgroup reads the peer's cgroup v2 path (the "0::" line of cgroup).
func (f *peerFacts) loadCgroup() (string, error) {
	b, err := f.readProcFile("cgroup")
	if err != nil {
		return "", err
	}
	cg, ok := procLine(b, "0::")
	if !ok {
		return "", fmt.Errorf("/proc/%d/cgroup has no cgroup v2 (0::) line", f.p.PID)
	}
	return cg, nil
}

// identity is the peer as this Check saw it: "pid 12 uid 1000 exe
// /usr/bin/x identifier org.x team T". The executable is the one examined,
// else the one read at connect.
func (f *peerFacts) identity() string {
	s := fmt.Sprintf("pid %d uid %d", f.p.PID, f.p.UID)
	exe := f.p.Exe
	if f.exe.done && f.exe.err == nil {
		exe = f.exe.v.path
	}
	if exe != "" {
		s += " exe " + exe
	}
	if f.sig.done && f.sig.err == nil && f.sig.v != nil {
		if f.sig.v.Identifier != "" {
			s += " identifier " + f.sig.v.Identifier
		}
		if f.sig.v.Team != "" {
			s += " team " + f.sig.v.Team
		}
	}
	return s
}
