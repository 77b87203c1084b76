package xpc

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc/codesign"
	"golang.org/x/sys/unix"
)

// selfPeer is the test process as a peer, as the kernel gives it on a
// socket pair (SO_PEERCRED, SO_PEERPIDFD).
func selfPeer(t testing.TB) *Peer {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peerOf(fds[0])
	unix.Close(fds[0])
	unix.Close(fds[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// child is a process the test started, and its Peer (with a pidfd from
// pidfd_open: the child has no socket to the test).
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	peer  *Peer
}

// startChild starts cmd with a pipe on its standard input; when the test
// ends, the child is killed and waited for.
func startChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := newPeer(&unix.Ucred{Pid: int32(cmd.Process.Pid), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}, -1)
	t.Cleanup(func() {
		p.close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &child{cmd: cmd, stdin: stdin, peer: p}
}

// realPath is name (looked up in PATH if it has no slash) with every
// symbolic link resolved, as /proc/PID/exe shows it.
func realPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if err != nil {
		t.Skipf("no %s: %v", name, err)
	}
	return p
}

// selfCgroup is the test process's cgroup v2 path.
func selfCgroup(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	cg, ok := procLine(b, "0::")
	if !ok {
		t.Skip("no cgroup v2 line in /proc/self/cgroup")
	}
	return cg
}

// fileDigest is the sha256 of the file at path.
func fileDigest(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func wantMet(t *testing.T, p *Peer, req string) {
	t.Helper()
	if err := MustParseRequirement(req).Check(p); err != nil {
		t.Errorf("%q: %v", req, err)
	}
}

// wantFail checks that p fails req at clause, with a cause whose text
// has cause in it ("" for no cause), and returns the error.
func wantFail(t *testing.T, p *Peer, req, clause, cause string) *RequirementError {
	t.Helper()
	r := MustParseRequirement(req)
	err := r.Check(p)
	var re *RequirementError
	if !errors.As(err, &re) || !errors.Is(err, ErrPeerRequirement) {
		t.Errorf("%q: %v, want a *RequirementError", req, err)
		return &RequirementError{}
	}
	if re.Requirement != r.String() || re.Clause != clause {
		t.Errorf("%q: requirement %q clause %q, want %q, %q", req, re.Requirement, re.Clause, r.String(), clause)
	}
	switch {
	case cause == "" && re.Err != nil:
		t.Errorf("%q: cause %v, want none", req, re.Err)
	case cause != "" && (re.Err == nil || !strings.Contains(re.Err.Error(), cause)):
		t.Errorf("%q: cause %v, want one saying %q", req, re.Err, cause)
	}
	return re
}

// TestRequirementCheckSelf checks the test process against requirements
// made of its own identity: its uid, groups, executable, its digest and
// cgroup.
func TestRequirementCheckSelf(t *testing.T) {
	p := selfPeer(t)
	uid, gid := os.Getuid(), os.Getgid()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	digest := fileDigest(t, exe)
	cg := selfCgroup(t)
	met := []string{
		fmt.Sprintf("uid %d", uid),
		fmt.Sprintf("group %d", gid),
		"exe " + quoteValue(exe),
		"sha256 " + digest,
		"unit " + quoteValue(cg),
		"unit /",
		fmt.Sprintf("not uid %d", uid+1),
		fmt.Sprintf("exe /nonexistent or uid %d", uid),
		fmt.Sprintf("uid %d and exe %s and unit %s", uid, quoteValue(exe), quoteValue(cg)),
		fmt.Sprintf("not (uid %d and exe /nonexistent)", uid),
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		met = append(met, "uid "+quoteValue(u.Username))
	}
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		met = append(met, "group "+quoteValue(g.Name))
	}
	for c := range strings.SplitSeq(cg, "/") {
		if c != "" && !strings.HasPrefix(c, "_") {
			met = append(met, "unit "+quoteValue(c)) // a slice, or the unit
		}
		if c != "" && !strings.HasSuffix(c, ".slice") {
			break
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := procLine(status, "Groups:")
	for _, g := range strings.Fields(groups) {
		met = append(met, "group "+g)
	}
	for _, req := range met {
		wantMet(t, p, req)
	}

	other := fmt.Sprintf("uid %d", uid+1)
	re := wantFail(t, p, other, other, "")
	if want := fmt.Sprintf("pid %d uid %d exe %s", os.Getpid(), uid, exe); re.Peer != want {
		t.Errorf("peer %q, want %q", re.Peer, want)
	}
	wantFail(t, p, fmt.Sprintf("uid %d and exe /nonexistent and unit /", uid), "exe /nonexistent", "stat /nonexistent: no such file")
	wantFail(t, p, other+" or exe /nonexistent", other+" or exe /nonexistent", "stat /nonexistent: no such file")
	wantFail(t, p, fmt.Sprintf("not uid %d", uid), fmt.Sprintf("not uid %d", uid), "")
	wantFail(t, p, "group 4243", "group 4243", "its groups are")
	zero := strings.Repeat("0", 64)
	wantFail(t, p, "sha256 "+zero, "sha256 "+zero, "sha256 is "+digest)
	wantFail(t, p, "unit /nonexistent-xpc", "unit /nonexistent-xpc", "its cgroup is "+cg)
	wantFail(t, p, "uid nosuchuser-xpc", "uid nosuchuser-xpc", "nosuchuser-xpc")
	// A name that is no one's passes no one, even under "not".
	wantFail(t, p, "not uid nosuchuser-xpc", "not uid nosuchuser-xpc", "nosuchuser-xpc")
	wantFail(t, p, "group nosuchgroup-xpc", "group nosuchgroup-xpc", "nosuchgroup-xpc")
	// An "and" names an unmet operand before one that cannot be decided.
	wantFail(t, p, "uid nosuchuser-xpc and "+other, other, "")
	e := wantFail(t, p, "uid nosuchuser-xpc or "+other, "uid nosuchuser-xpc or "+other, "nosuchuser-xpc")
	if !strings.Contains(e.Error(), `fails "uid nosuchuser-xpc or `+other+`": `) {
		t.Errorf("error text %q", e.Error())
	}
}

// procfdOf is p's /proc directory descriptor, -1 when not open.
func procfdOf(p *Peer) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.procfd
}

// TestRequirementCheckLazy: a requirement met or failed by the
// credentials alone reads nothing from /proc; recheck then reads nothing
// either.
func TestRequirementCheckLazy(t *testing.T) {
	p := selfPeer(t)
	uid, gid := os.Getuid(), os.Getgid()
	if changed, err := p.exeChanged(); !changed || err != nil {
		t.Errorf("exeChanged before any Check = %v, %v; want true", changed, err)
	}
	for _, req := range []string{
		fmt.Sprintf("uid %d", uid),
		fmt.Sprintf("group %d", gid),
		fmt.Sprintf("uid %d or exe /nonexistent", uid),
		fmt.Sprintf("uid %d and exe /nonexistent", uid+1),
		fmt.Sprintf("not uid %d", uid+1),
	} {
		r := MustParseRequirement(req)
		err := r.Check(p)
		if fd := procfdOf(p); fd >= 0 {
			t.Errorf("%q (%v) opened /proc", req, err)
		}
		changed, cerr := p.exeChanged()
		if cerr != nil || changed != (err != nil) {
			t.Errorf("%q (%v): exeChanged = %v, %v", req, err, changed, cerr)
		}
		if err == nil {
			if err := r.recheck(p); err != nil || procfdOf(p) >= 0 {
				t.Errorf("%q: recheck = %v, or it opened /proc", req, err)
			}
		}
	}
	wantMet(t, p, "exe "+quoteValue(testExe(t)))
	if procfdOf(p) < 0 {
		t.Error("an exe clause did not open /proc")
	}
}

// fakeVerifier stands for codesign in Check, and records how it was
// called.
type fakeVerifier struct {
	info     *codesign.Info
	err      error
	digest   [32]byte
	verifies int
	digests  int
	path     string
	head     []byte // the first bytes of the file Verify was given
}

func (v *fakeVerifier) Verify(f *os.File, path string) (*codesign.Info, error) {
	v.verifies++
	v.path = path
	v.head = make([]byte, 4)
	if _, err := f.ReadAt(v.head, 0); err != nil {
		return nil, err
	}
	return v.info, v.err
}

func (v *fakeVerifier) Digest(f *os.File) ([32]byte, error) {
	v.digests++
	return v.digest, nil
}

// TestRequirementCheckSigned: identifier, team and signed ask the
// verifier once per Check, give it the executable itself and its path, and
// tell a missing or bad signature (unmet) from one that could not be read
// (unknown, which "not" keeps failing).
func TestRequirementCheckSigned(t *testing.T) {
	p := selfPeer(t)
	exe := testExe(t)
	v := &fakeVerifier{info: &codesign.Info{Identifier: "org.example.app", Team: "TEAM1"}}
	p.verifier = v
	wantMet(t, p, "identifier org.example.app and team TEAM1 and signed")
	if v.verifies != 1 || v.path != exe || string(v.head) != "\x7fELF" {
		t.Errorf("Verify called %d times with %q and a file starting %q; want once, %q, an ELF file", v.verifies, v.path, v.head, exe)
	}
	wantMet(t, p, "team TEAM0 or team TEAM1")
	re := wantFail(t, p, "signed and identifier org.example.other", "identifier org.example.other", "")
	if want := fmt.Sprintf("pid %d uid %d exe %s identifier org.example.app team TEAM1", os.Getpid(), os.Getuid(), exe); re.Peer != want {
		t.Errorf("peer %q, want %q", re.Peer, want)
	}
	wantFail(t, p, "team TEAM2", "team TEAM2", "")
	wantFail(t, p, "not signed", "not signed", "")

	for _, sentinel := range []error{codesign.ErrUnsigned, codesign.ErrBadSignature, codesign.ErrUntrusted} {
		v.info, v.err = nil, fmt.Errorf("codesign: %s: %w", exe, sentinel)
		for _, req := range []string{"signed", "identifier org.example.app", "team TEAM1"} {
			re := wantFail(t, p, req, req, sentinel.Error())
			if !errors.Is(re, sentinel) {
				t.Errorf("%q: %v does not match %v", req, re, sentinel)
			}
			if want := fmt.Sprintf("pid %d uid %d exe %s", os.Getpid(), os.Getuid(), exe); re.Peer != want {
				t.Errorf("peer %q, want %q", re.Peer, want)
			}
		}
		wantMet(t, p, "not signed")
		re := wantFail(t, p, "signed or team TEAM1", "signed or team TEAM1", sentinel.Error())
		if !errors.Is(re, sentinel) || strings.Count(re.Error(), sentinel.Error()) != 1 {
			t.Errorf("%v: want the cause once", re)
		}
	}

	broken := errors.New("disk on fire")
	v.err = broken
	for _, req := range []string{"signed", "not signed", "not identifier org.example.app"} {
		if re := wantFail(t, p, req, req, "disk on fire"); !errors.Is(re, broken) {
			t.Errorf("%q: %v does not wrap the cause", req, re)
		}
	}
}

// TestRequirementCheckDigest: sha256 asks the verifier's Digest once per
// Check; the default one is the file's sha256.
func TestRequirementCheckDigest(t *testing.T) {
	p := selfPeer(t)
	v := &fakeVerifier{digest: [32]byte{1, 2, 3}}
	p.verifier = v
	d := hex.EncodeToString(v.digest[:])
	wantMet(t, p, "sha256 "+d+" and (sha256 "+strings.Repeat("f", 64)+" or sha256 "+d+")")
	if v.digests != 1 || v.verifies != 0 {
		t.Errorf("Digest called %d times, Verify %d; want once and never", v.digests, v.verifies)
	}
	f, err := os.Open(testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(100, io.SeekStart) // the digest is of the whole file wherever f is
	sum, err := defaultVerifier{}.Digest(f)
	if want := fileDigest(t, testExe(t)); err != nil || hex.EncodeToString(sum[:]) != want {
		t.Errorf("defaultVerifier.Digest = %x, %v; want %s", sum, err, want)
	}
}

// waitExited waits until p's process has exited.
func waitExited(t *testing.T, p *Peer) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); !p.exited(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the child did not exit")
		}
	}
}

// TestRequirementCheckExited: once the peer has exited, every clause that
// needs /proc fails, saying so, whether the peer is still a zombie or
// reaped, and whether /proc was opened before it exited or after; the
// credentials still answer.
func TestRequirementCheckExited(t *testing.T) {
	sh := realPath(t, "sh")
	for _, reap := range []bool{false, true} {
		for _, early := range []bool{false, true} {
			t.Run(fmt.Sprintf("reaped=%v,opened-before=%v", reap, early), func(t *testing.T) {
				c := startChild(t, exec.Command(sh, "-c", "read x"))
				p := c.peer
				if early {
					wantMet(t, p, "exe "+sh)
				}
				c.stdin.Close()
				waitExited(t, p)
				if reap {
					c.cmd.Wait()
				}
				if changed, err := p.exeChanged(); !changed || (early != (err != nil)) {
					t.Errorf("exeChanged of an exited peer = %v, %v", changed, err)
				}
				uid := fmt.Sprintf("uid %d", os.Getuid())
				for _, req := range []string{"exe " + sh, "sha256 " + strings.Repeat("0", 64), "signed",
					"group 4243", "unit /", "not exe /nonexistent", uid + " and unit /"} {
					clause := strings.TrimPrefix(req, uid+" and ")
					if re := wantFail(t, p, req, clause, "exited"); !errors.Is(re, errPeerExited) {
						t.Errorf("%q: %v, want the cause errPeerExited", req, re)
					}
				}
				wantMet(t, p, uid)
			})
		}
	}
}

// TestRequirementCheckExec: a peer that executes another program after
// its Peer was made is seen by exeChanged, fails recheck with the new
// executable named, and Check then judges the new program.
func TestRequirementCheckExec(t *testing.T) {
	sh, sleep := realPath(t, "sh"), realPath(t, "sleep")
	c := startChild(t, exec.Command(sh, "-c", "read x; exec "+sleep+" 60"))
	p := c.peer
	r := MustParseRequirement("exe " + sh)
	if err := r.recheck(p); err != nil {
		t.Fatal(err)
	}
	if changed, err := p.exeChanged(); changed || err != nil {
		t.Fatalf("exeChanged = %v, %v before the exec", changed, err)
	}
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	exeLink := fmt.Sprintf("/proc/%d/exe", p.PID)
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(time.Millisecond) {
		if exe, _ := os.Readlink(exeLink); exe == sleep {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child did not execute sleep")
		}
	}
	if changed, err := p.exeChanged(); !changed || err != nil {
		t.Errorf("exeChanged = %v, %v after the exec", changed, err)
	}
	var re *RequirementError
	if err := r.recheck(p); !errors.As(err, &re) || re.Clause != "exe "+sh || !strings.HasSuffix(re.Peer, " exe "+sleep) {
		t.Errorf("recheck after the exec: %v", err)
	}
	if changed, err := p.exeChanged(); !changed || err != nil {
		t.Errorf("exeChanged = %v, %v after a failed Check", changed, err)
	}
	after := MustParseRequirement("exe " + sleep)
	if err := after.recheck(p); err != nil {
		t.Errorf("the new program: %v", err)
	}
	if changed, err := p.exeChanged(); changed || err != nil {
		t.Errorf("exeChanged = %v, %v after the new program passed", changed, err)
	}
}

// TestPeerExeChangedRewrite: a change to the executable file itself (its
// status here: a running program cannot be written) counts as another
// executable, so that a program rewritten and run again is checked again.
func TestPeerExeChangedRewrite(t *testing.T) {
	src, err := os.ReadFile(realPath(t, "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "sleeper")
	if err := os.WriteFile(exe, src, 0o755); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(exe, "60"))
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(time.Millisecond) {
		if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.peer.PID)); got == exe {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child did not start")
		}
	}
	wantMet(t, c.peer, "exe "+quoteValue(exe))
	if _, err := os.OpenFile(exe, os.O_WRONLY, 0); !errors.Is(err, syscall.ETXTBSY) {
		t.Logf("writing the running program: %v (not ETXTBSY)", err)
	}
	var before unix.Stat_t
	if err := unix.Stat(exe, &before); err != nil {
		t.Fatal(err)
	}
	for mode, st := os.FileMode(0o700), before; st.Ctim == before.Ctim; mode ^= 0o055 {
		if err := os.Chmod(exe, mode); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat(exe, &st); err != nil {
			t.Fatal(err)
		}
	}
	if changed, err := c.peer.exeChanged(); !changed || err != nil {
		t.Errorf("exeChanged = %v, %v after the file changed", changed, err)
	}
	wantMet(t, c.peer, "exe "+quoteValue(exe))
	if changed, err := c.peer.exeChanged(); changed || err != nil {
		t.Errorf("exeChanged = %v, %v after a new Check", changed, err)
	}
}

// TestRequirementCheckGroups: a supplementary group is read from /proc
// when the gid given at connect is not the one asked for.
func TestRequirementCheckGroups(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("giving a child supplementary groups needs root")
	}
	cmd := exec.Command(realPath(t, "sleep"), "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{4242, 4244}}}
	c := startChild(t, cmd)
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(time.Millisecond) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.peer.PID)); strings.Contains(string(b), "\nGroups:\t4242 4244") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child did not take its groups")
		}
	}
	wantMet(t, c.peer, "group 0")
	if procfdOf(c.peer) >= 0 {
		t.Error("group 0, the gid given at connect, opened /proc")
	}
	wantMet(t, c.peer, "group 4244")
	wantMet(t, c.peer, "group 4242 and not group 4243")
	wantFail(t, c.peer, "group 4243", "group 4243", "its groups are 0 and [4242 4244]")
}

// cgroup2Mount is where cgroup v2 is mounted, from /proc/self/mountinfo.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, w := range fields {
			if w == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && fields[3] == "/" {
				return fields[4]
			}
		}
	}
	t.Skip("no cgroup v2 mount")
	return ""
}

// TestRequirementCheckUnit puts a child in a cgroup of the test's own,
// below a unit as a delegate would arrange it
// (/xpc-req-test-PID.slice/leaf.service/inner.slice/fake.service), and
// checks unit by name (the unit, leaf.service, or a slice above it) and by
// path prefix (whole components).
func TestRequirementCheckUnit(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("moving a process to another cgroup needs root")
	}
	mount := cgroup2Mount(t)
	group := fmt.Sprintf("xpc-req-test-%d.slice", os.Getpid())
	base := "/" + group
	path := base + "/leaf.service/inner.slice/fake.service"
	if err := os.MkdirAll(filepath.Join(mount, path), 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		for p := path; p != "/"; p = filepath.Dir(p) {
			os.Remove(filepath.Join(mount, p))
		}
	})
	c := startChild(t, exec.Command(realPath(t, "sleep"), "60"))
	if err := os.WriteFile(filepath.Join(mount, path, "cgroup.procs"), []byte(strconv.Itoa(c.peer.PID)), 0); err != nil {
		t.Skipf("cannot move a process to a new cgroup: %v", err)
	}
	for _, req := range []string{"unit leaf.service", "unit " + group, "unit " + base, "unit " + base + "/leaf.service",
		"unit " + path, "unit /", "not unit leaf", "not unit fake.service", "not unit inner.slice"} {
		wantMet(t, c.peer, req)
	}
	for _, u := range []string{"leaf", "service", "fake.service", "inner.slice"} {
		req := "unit " + u
		wantFail(t, c.peer, req, req, "its cgroup is "+path+", of unit leaf.service")
	}
	for _, u := range []string{base[:len(base)-1], path + "/x", "/leaf.service"} {
		req := "unit " + u
		wantFail(t, c.peer, req, req, "its cgroup is "+path)
	}
}

// TestPeerCheckConcurrent: Check, recheck and exeChanged on one Peer from
// several goroutines, and close, are safe (run with -race).
func TestPeerCheckConcurrent(t *testing.T) {
	p := selfPeer(t)
	r := MustParseRequirement("exe " + quoteValue(testExe(t)) + " and unit /")
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				r.Check(p)
				r.recheck(p)
				p.exeChanged()
			}
		}()
	}
	for range 4 {
		<-done
	}
	p.close()
	if changed, err := p.exeChanged(); !changed || err == nil {
		t.Errorf("exeChanged of a closed peer = %v, %v", changed, err)
	}
	var re *RequirementError
	if err := r.Check(p); !errors.As(err, &re) || !strings.Contains(re.Err.Error(), "pidfd") {
		t.Errorf("Check of a closed peer: %v", err)
	}
}

// TestRequirementCheckPIDReuse: a Peer whose process was reaped while its
// pid now names a live process (here the test itself, as if the pid had
// been given again) reads nothing of that process: /proc/PID is kept only
// while the pidfd's process has not been reaped.
func TestRequirementCheckPIDReuse(t *testing.T) {
	cmd := exec.Command(realPath(t, "true"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	p := newPeer(&unix.Ucred{Pid: int32(os.Getpid()), Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}, pidfd)
	defer p.close()
	req := "exe " + quoteValue(testExe(t))
	if re := wantFail(t, p, req, req, "exited"); !errors.Is(re, errPeerExited) {
		t.Errorf("%v, want the cause errPeerExited", re)
	}
	if procfdOf(p) >= 0 {
		t.Error("the /proc directory of the pid's new process was kept")
	}
}
