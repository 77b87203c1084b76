package xpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/goxpc/xpc/codesign"
	"golang.org/x/sys/unix"
)

// Requirements on signed executables, end to end: copies of the test
// binary, signed with keys the test makes (never the test binary itself,
// which lives in the build cache), reach listeners that require
// "identifier org.example.client and team ABCDE12345", or "uid 0 and
// identifier org.example.client". The listeners live in a checking process
// started with XPCD_ROOT set to a directory whose trust.d holds the test's
// key, so that the requirement's signature clauses go through
// codesign.Default and the trust directory, as in a service. Each peer is
// both a client of the checker's listeners (its refusal says the clause,
// the peer and, in its description, the signature error) and a listener
// the checker connects to with the same requirements (its error matches
// the signature error with errors.Is). requirement_signed_helpers_test.go
// has the processes.

const (
	signedIdentifier = "org.example.client"
	signedTeam       = "ABCDE12345"
	otherTeam        = "ZYXWV98765"
	teamRequirement  = "identifier " + signedIdentifier + " and team " + signedTeam
	uidRequirement   = "uid 0 and identifier " + signedIdentifier
	identifierClause = "identifier " + signedIdentifier
)

// signedProc is a helper process the test talks to in lines of JSON, on
// its standard input and output.
type signedProc struct {
	cmd    *exec.Cmd
	stdin  *os.File
	lines  chan []byte // its standard output, a line at a time; closed at its end
	exited chan error  // cmd.Wait's result, put back by whoever takes it
	mu     sync.Mutex  // one question at a time (ask)
}

// startSignedProc runs exe as the named helper, with env added to the
// test's environment, as cred's user if cred is not nil. When the test
// ends its standard input is closed, and it is killed if it has not
// exited by then, and waited for, and what it wrote last is read.
func startSignedProc(t testing.TB, exe, helper string, cred *syscall.Credential, env ...string) *signedProc {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), signedHelperEnv+"="+helper, quickExitEnv()), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatal(err)
	}
	p := &signedProc{cmd: cmd, stdin: inW, lines: make(chan []byte, 16), exited: make(chan error, 1)}
	go func() {
		defer close(p.lines)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- bytes.Clone(sc.Bytes())
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		inW.Close()
		select {
		case err := <-p.exited:
			p.exited <- err
		case <-time.After(testTimeout):
			cmd.Process.Kill()
			<-p.exited
			t.Errorf("helper %s did not exit", helper)
		}
		for range p.lines { // until the reader has closed outR
		}
	})
	return p
}

// quickExitEnv is the GORACE setting, the test's own with
// atexit_sleep_ms=0 added, under which a helper built with the race
// detector exits without sleeping a second first (its default, for
// goroutines to report races: the helpers' are reported before they
// exit).
func quickExitEnv() string {
	if v := os.Getenv("GORACE"); v != "" {
		return "GORACE=" + v + " atexit_sleep_ms=0"
	}
	return "GORACE=atexit_sleep_ms=0"
}

// read decodes the next line the helper writes into v.
func (p *signedProc) read(t testing.TB, v any) {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			t.Fatalf("helper %d ended without answering", p.cmd.Process.Pid)
		}
		if err := json.Unmarshal(line, v); err != nil {
			t.Fatalf("helper %d said %q: %v", p.cmd.Process.Pid, line, err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("helper %d did not answer", p.cmd.Process.Pid)
	}
}

// ask sends the checker a command and returns its answer, failing the
// test if the command failed.
func (p *signedProc) ask(t testing.TB, cmd signedCommand) signedAnswer {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	var a signedAnswer
	p.read(t, &a)
	if a.Err != "" {
		t.Fatalf("checker: %s %s: %s", cmd.Op, cmd.Path, a.Err)
	}
	return a
}

// wait closes the helper's standard input and waits for it to exit,
// failing the test unless it exited cleanly.
func (p *signedProc) wait(t testing.TB) {
	t.Helper()
	p.stdin.Close()
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("helper %d: %v", p.cmd.Process.Pid, err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("helper %d did not exit", p.cmd.Process.Pid)
	}
}

// signedKeys is a key the checker trusts and one it does not.
type signedKeys struct {
	trusted, untrusted minisign.PrivateKey
}

// makeSignedKeys makes the keys under dir, and the trust directory
// root/trust.d holding the trusted one's public key, as XPCD_ROOT=root
// makes codesign.Default read it.
func makeSignedKeys(t testing.TB, dir, root string) signedKeys {
	t.Helper()
	trust := filepath.Join(root, "trust.d")
	if err := os.MkdirAll(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	var ks signedKeys
	for _, k := range []struct {
		name string
		key  *minisign.PrivateKey
	}{{"trusted", &ks.trusted}, {"untrusted", &ks.untrusted}} {
		prefix := filepath.Join(dir, k.name)
		if _, err := codesign.WriteKeyPair(prefix); err != nil {
			t.Fatal(err)
		}
		key, err := codesign.ReadPrivateKey(prefix + ".key")
		if err != nil {
			t.Fatal(err)
		}
		*k.key = key
	}
	pub, err := os.ReadFile(filepath.Join(dir, "trusted.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trust, "trusted.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return ks
}

// signedTempDir makes a directory every user may search (the helpers of
// another uid run the copies in it), short enough for socket paths.
func signedTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "goxpc-signed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyExecutable copies the test binary to path, padded with
// pseudo-random bytes to size bytes if it is smaller (a zero size: not
// padded), mode 0755.
func copyExecutable(t testing.TB, path string, size int64) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(dst, src)
	if err == nil && n < size {
		_, err = io.CopyN(dst, rand.NewChaCha8([32]byte{}), size-n)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// signature signs the file at path with key as identifier id of team.
func signature(t testing.TB, path string, key minisign.PrivateKey, id, team string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sig, err := codesign.Sign(f, key, codesign.Identity{Identifier: id, Team: team})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// writeSignature writes sig beside the file at path, as it is.
func writeSignature(t testing.TB, path string, sig []byte) {
	t.Helper()
	if err := os.WriteFile(path+codesign.Suffix, sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signedWant is what a requirement makes of a case's peer.
type signedWant struct {
	rule  string   // the clause that fails; "" if the peer passes
	cause error    // the signature error that makes it fail, if any
	peer  []string // what the reason's Peer says besides pid, uid and exe
}

// signedCase is a peer of TestSignedPeers.
type signedCase struct {
	name string
	// make turns the copy of the test binary at path into the case's
	// executable, or returns why the case cannot run here.
	make func(t *testing.T, ks signedKeys, path string) (skip string)
	cred *syscall.Credential // the peer's user; nil: the test's
	// What teamRequirement and uidRequirement make of the peer.
	team, uid signedWant
}

func signedCases() []signedCase {
	sign := func(team string) func(*testing.T, signedKeys, string) string {
		return func(t *testing.T, ks signedKeys, path string) string {
			writeSignature(t, path, signature(t, path, ks.trusted, signedIdentifier, team))
			return ""
		}
	}
	bad := func(cause error) signedWant { return signedWant{rule: identifierClause, cause: cause} }
	return []signedCase{
		{name: "signed", make: sign(signedTeam)},
		{name: "signed-xattr", make: signXattr},
		{name: "unsigned", make: func(*testing.T, signedKeys, string) string { return "" },
			team: bad(codesign.ErrUnsigned), uid: bad(codesign.ErrUnsigned)},
		{name: "signature-of-other-content", make: signOther,
			team: bad(codesign.ErrBadSignature), uid: bad(codesign.ErrBadSignature)},
		{name: "forged-team", make: forgeTeam,
			team: bad(codesign.ErrBadSignature), uid: bad(codesign.ErrBadSignature)},
		{name: "untrusted-key", make: func(t *testing.T, ks signedKeys, path string) string {
			writeSignature(t, path, signature(t, path, ks.untrusted, signedIdentifier, signedTeam))
			return ""
		}, team: bad(codesign.ErrUntrusted), uid: bad(codesign.ErrUntrusted)},
		{name: "other-team", make: sign(otherTeam),
			team: signedWant{rule: "team " + signedTeam, peer: []string{"identifier " + signedIdentifier + " team " + otherTeam + " "}}},
		{name: "other-uid", make: sign(signedTeam), cred: nobodyCred(),
			uid: signedWant{rule: "uid 0"}},
		{name: "modified-after-signing", make: func(t *testing.T, ks signedKeys, path string) string {
			sign(signedTeam)(t, ks, path)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				_, err = f.Write([]byte{0})
				f.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			return ""
		}, team: bad(codesign.ErrBadSignature), uid: bad(codesign.ErrBadSignature)},
	}
}

// signXattr signs the file at path in its extended attribute.
func signXattr(t *testing.T, ks signedKeys, path string) string {
	sig := signature(t, path, ks.trusted, signedIdentifier, signedTeam)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = codesign.WriteXattr(f, sig)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
		return fmt.Sprintf("%s: %v", filepath.Dir(path), err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ""
}

// signOther writes beside the file at path a valid signature, by the
// trusted key and with the right identity, of other contents.
func signOther(t *testing.T, ks signedKeys, path string) string {
	other := path + ".other"
	if err := os.WriteFile(other, []byte("other contents\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSignature(t, path, signature(t, other, ks.trusted, signedIdentifier, signedTeam))
	return ""
}

// forgeTeam signs the file at path as another team, and then edits the
// signature's trusted comment to say the team required.
func forgeTeam(t *testing.T, ks signedKeys, path string) string {
	sig := signature(t, path, ks.trusted, signedIdentifier, otherTeam)
	forged := bytes.Replace(sig, []byte("team="+otherTeam), []byte("team="+signedTeam), 1)
	if bytes.Equal(forged, sig) {
		t.Fatalf("the signature does not say team=%s:\n%s", otherTeam, sig)
	}
	writeSignature(t, path, forged)
	return ""
}

// signedWorld is what the cases share: the checker, its listeners, and
// the directories.
type signedWorld struct {
	dir     string // the executables
	sockets string // the sockets: a directory every user may write in
	checker *signedProc
	team    string // the checker's listener requiring teamRequirement
	uid     string // and uidRequirement
}

// TestSignedPeers: a listener requiring an identifier and a team of its
// clients accepts a client whose executable is signed so by a trusted key
// (beside it, or in its extended attribute) and turns away, before its
// handler sees them, an unsigned one, one whose signature is of other
// contents or whose team was edited into it, one signed by an untrusted
// key, one of another team, and one modified after signing; a listener
// requiring uid 0 too turns away the signed one run as another user. Each
// refusal says the clause that failed, the peer as checked (pid, uid,
// exe, and the signed identity when the signature is good), and the
// signature error; a client requiring the same of a listener fails with
// the signature error itself (errors.Is).
func TestSignedPeers(t *testing.T) {
	leakCheck(t)
	cases := signedCases()
	w := &signedWorld{dir: signedTempDir(t)}
	ks := makeSignedKeys(t, t.TempDir(), filepath.Join(w.dir, "root"))
	w.sockets = filepath.Join(w.dir, "s")
	if err := os.Mkdir(w.sockets, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(w.sockets, 0o1777); err != nil {
		t.Fatal(err)
	}
	// Every executable is made before any process starts: a child forked
	// while a file is open for writing would keep it busy (ETXTBSY).
	skips := map[string]string{}
	for _, tc := range cases {
		path := filepath.Join(w.dir, tc.name)
		copyExecutable(t, path, 0)
		skips[tc.name] = tc.make(t, ks, path)
	}
	w.checker = startSignedProc(t, testExe(t), "checker", nil, "XPCD_ROOT="+filepath.Join(w.dir, "root"))
	w.team, w.uid = filepath.Join(w.sockets, "team.sock"), filepath.Join(w.sockets, "uid.sock")
	w.checker.ask(t, signedCommand{Op: "listen", Path: w.team, Reqs: []string{teamRequirement}})
	w.checker.ask(t, signedCommand{Op: "listen", Path: w.uid, Reqs: []string{uidRequirement}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if skips[tc.name] != "" {
				t.Skip(skips[tc.name])
			}
			if tc.cred != nil {
				needRoot(t)
			}
			t.Parallel()
			w.run(t, tc)
		})
	}
}

// run runs the peer of tc and checks what each side made of the other.
func (w *signedWorld) run(t *testing.T, tc signedCase) {
	exe := filepath.Join(w.dir, tc.name)
	serve := filepath.Join(w.sockets, tc.name+".sock")
	p := startSignedProc(t, exe, "peer", tc.cred,
		signedDialEnv+"="+w.team+string(filepath.ListSeparator)+w.uid, signedServeEnv+"="+serve)
	var dials []signedOutcome
	p.read(t, &dials)
	if len(dials) != 2 {
		t.Fatalf("the peer reported %d requests", len(dials))
	}
	pid, uid := p.cmd.Process.Pid, os.Getuid()
	if tc.cred != nil {
		uid = int(tc.cred.Uid)
	}
	who := []string{fmt.Sprintf("pid %d ", pid), fmt.Sprintf("uid %d ", uid), "exe " + exe + " "}
	wantSigned(t, "listener requiring "+teamRequirement, dials[0], tc.team, who, false)
	wantSigned(t, "listener requiring "+uidRequirement, dials[1], tc.uid, who, false)

	a := w.checker.ask(t, signedCommand{Op: "dial", Path: serve, Reqs: []string{teamRequirement, uidRequirement}})
	wantSigned(t, "client requiring "+teamRequirement, a.Outcomes[0], tc.team, who, true)
	wantSigned(t, "client requiring "+uidRequirement, a.Outcomes[1], tc.uid, who, true)
	p.wait(t)

	// The listeners' handlers saw the peer only where it passed.
	for _, l := range []struct {
		path string
		want signedWant
	}{{w.team, tc.team}, {w.uid, tc.uid}} {
		peers := w.checker.ask(t, signedCommand{Op: "peers", Path: l.path, PID: pid}).Peers
		switch {
		case l.want.rule != "" && len(peers) != 0:
			t.Errorf("%s: the handler saw the peer it refused: %+v", l.path, peers)
		case l.want.rule == "" && (len(peers) != 1 || !slices.Equal(peers[0].Ops, []string{"hello"})):
			t.Errorf("%s: the handler saw %+v, want one connection that sent hello", l.path, peers)
		}
	}
}

// wantSigned checks o against want: served, or refused with ErrInvalid
// and ErrPeerRequirement, a reason naming the clause and, in its Peer,
// each of who and want.peer, and an error that says want.cause and no
// other signature error (and matches it with errors.Is, if matched).
func wantSigned(t *testing.T, what string, o signedOutcome, want signedWant, who []string, matched bool) {
	t.Helper()
	if want.rule == "" {
		if !o.Replied {
			t.Errorf("%s: refused: %s", what, o.Err)
		}
		return
	}
	if o.Replied {
		t.Errorf("%s: served; want it refused for %q", what, want.rule)
		return
	}
	if o.Code != ReasonRequirementFailed || o.Rule != want.rule || !o.Invalid || !o.PeerRequirement {
		t.Errorf("%s: %+v; want a refusal, code %q, rule %q, ErrInvalid and ErrPeerRequirement",
			what, o, ReasonRequirementFailed, want.rule)
	}
	for _, s := range append(slices.Clone(who), want.peer...) {
		if !strings.Contains(o.Peer+" ", s) {
			t.Errorf("%s: the reason's peer %q does not say %q", what, o.Peer, s)
		}
	}
	for _, e := range signatureErrors() {
		if said := strings.Contains(o.Err, e.Error()); said != (e == want.cause) {
			t.Errorf("%s: %q says %q: %t; want the cause %v", what, o.Err, e, said, want.cause)
		}
		if is := slices.Contains(o.Causes, e.Error()); matched && is != (e == want.cause) {
			t.Errorf("%s: errors.Is(err, %q) = %t; want the cause %v", what, e, is, want.cause)
		}
	}
}

// TestSignedPeerExec: a client signed as the listener requires, which
// passes, has a request answered, and then executes an unsigned program
// keeping its connection, is refused from its next message: the message
// and the request the new program sends reach no handler, and the
// connection ends, on the listener's side, with ErrInvalid and
// ErrPeerRequirement, the identifier clause, the new executable, and
// codesign.ErrUnsigned as its cause.
func TestSignedPeerExec(t *testing.T) {
	leakCheck(t)
	dir := signedTempDir(t)
	root := filepath.Join(dir, "root")
	ks := makeSignedKeys(t, t.TempDir(), root)
	signed, unsigned := filepath.Join(dir, "signed"), filepath.Join(dir, "unsigned")
	copyExecutable(t, signed, 0)
	copyExecutable(t, unsigned, 0)
	writeSignature(t, signed, signature(t, signed, ks.trusted, signedIdentifier, signedTeam))

	checker := startSignedProc(t, testExe(t), "checker", nil, "XPCD_ROOT="+root)
	sock := filepath.Join(dir, "l.sock")
	checker.ask(t, signedCommand{Op: "listen", Path: sock, Reqs: []string{teamRequirement}})
	p := startSignedProc(t, signed, "exec", nil, signedDialEnv+"="+sock, signedExecEnv+"="+unsigned)
	p.wait(t) // the new program exits when the listener closes the connection

	peers := checker.ask(t, signedCommand{Op: "peers", Path: sock, PID: p.cmd.Process.Pid}).Peers
	if len(peers) != 1 {
		t.Fatalf("the handler saw %d connections of the peer, want 1", len(peers))
	}
	if !slices.Equal(peers[0].Ops, []string{"before"}) {
		t.Errorf("delivered: %q, want only the message before the exec", peers[0].Ops)
	}
	who := []string{fmt.Sprintf("pid %d ", p.cmd.Process.Pid), fmt.Sprintf("uid %d ", os.Getuid()), "exe " + unsigned + " "}
	wantSigned(t, "after the exec", peers[0].Final, signedWant{rule: identifierClause, cause: codesign.ErrUnsigned}, who, true)
}
