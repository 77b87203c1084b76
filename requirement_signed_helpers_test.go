package xpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/goxpc/xpc/codesign"
	"golang.org/x/sys/unix"
)

// The processes of requirement_signed_test.go: copies of the test binary,
// run with GOXPC_SIGNED_HELPER naming what they do, which talk to the test
// in lines of JSON on their standard input and output.
//
//   - checker: the checking process, run with XPCD_ROOT so that
//     codesign.Default trusts the test's key. It listens, with a
//     requirement, on the paths the test names, records what the peers
//     that pass send and how their connections end, and connects, with a
//     requirement, to the peers' listeners.
//   - peer: a signed (or unsigned, or badly signed) copy. It listens on
//     GOXPC_SIGNED_SERVE, connects to each listener of
//     GOXPC_SIGNED_DIAL, sends each a request, prints how each fared, and
//     serves until its standard input closes.
//   - exec: a copy that connects to GOXPC_SIGNED_DIAL, has a request
//     answered, and then executes GOXPC_SIGNED_EXEC, keeping its socket,
//     as requirement_multiproc_test.go's after-exec helper.
//   - wait: does nothing until its standard input closes (a peer for
//     the benchmark).

const signedHelperEnv = "GOXPC_SIGNED_HELPER"

const (
	signedDialEnv  = "GOXPC_SIGNED_DIAL"  // the paths to dial, as filepath.SplitList reads them
	signedServeEnv = "GOXPC_SIGNED_SERVE" // the path to listen on
	signedExecEnv  = "GOXPC_SIGNED_EXEC"  // the program to execute
)

func init() {
	if name := os.Getenv(signedHelperEnv); name != "" {
		os.Exit(runSignedHelper(name))
	}
}

func runSignedHelper(name string) int {
	var err error
	switch name {
	case "checker":
		err = signedHelperChecker()
	case "peer":
		err = signedHelperPeer()
	case "exec":
		err = signedHelperExec()
	case "wait":
		_, err = io.Copy(io.Discard, os.Stdin)
	default:
		err = fmt.Errorf("no helper %q", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "signed helper %s: %v\n", name, err)
		return 1
	}
	return 0
}

// signatureErrors are the signature errors a requirement's cause may match.
func signatureErrors() []error {
	return []error{codesign.ErrUnsigned, codesign.ErrBadSignature, codesign.ErrUntrusted}
}

// signedOutcome is how a request fared, as a helper reports it.
type signedOutcome struct {
	Replied         bool     `json:"replied,omitempty"`
	Err             string   `json:"err,omitempty"`
	Code            string   `json:"code,omitempty"`
	Rule            string   `json:"rule,omitempty"`
	Peer            string   `json:"peer,omitempty"`
	Description     string   `json:"description,omitempty"`
	Invalid         bool     `json:"invalid,omitempty"`
	PeerRequirement bool     `json:"peer_requirement,omitempty"`
	Causes          []string `json:"causes,omitempty"` // the texts of the signatureErrors err matches
}

// outcomeOf reports err, the error of a request (nil: it was answered).
func outcomeOf(err error) signedOutcome {
	if err == nil {
		return signedOutcome{Replied: true}
	}
	o := signedOutcome{Err: err.Error(), Invalid: errors.Is(err, ErrInvalid), PeerRequirement: errors.Is(err, ErrPeerRequirement)}
	var ce *ConnError
	if errors.As(err, &ce) && ce.Reason != nil {
		o.Code, o.Rule, o.Peer, o.Description = ce.Reason.Code, ce.Reason.Rule, ce.Reason.Peer, ce.Reason.Description
	}
	for _, s := range signatureErrors() {
		if errors.Is(err, s) {
			o.Causes = append(o.Causes, s.Error())
		}
	}
	return o
}

// dialSigned connects to the listener at path, sends it a request, and
// reports how it fared.
func dialSigned(ctx context.Context, path string, opts ...Option) signedOutcome {
	c, err := DialUnix(ctx, path, opts...)
	if err != nil {
		return outcomeOf(err)
	}
	c.Activate()
	defer c.Cancel()
	_, err = c.SendWithReply(ctx, Dict("op", "hello"))
	return outcomeOf(err)
}

// signedHelperPeer is the peer helper.
func signedHelperPeer() error {
	ctx, cancel := reqHelperCtx()
	defer cancel()
	if path := os.Getenv(signedServeEnv); path != "" {
		l, err := ListenUnix(path, 0o666)
		if err != nil {
			return err
		}
		l.SetHandler(func(p *Connection) {
			p.SetHandler(HandlerFunc(echo))
			p.Activate()
		})
		l.Activate()
		defer l.Cancel()
	}
	dials := []signedOutcome{}
	for _, path := range filepath.SplitList(os.Getenv(signedDialEnv)) {
		dials = append(dials, dialSigned(ctx, path))
	}
	if err := json.NewEncoder(os.Stdout).Encode(dials); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}

// signedHelperExec is the exec helper: its connection is made by hand
// (dialUnixFD, NewConnectionFromFile) so that it keeps the descriptor the
// executed program inherits.
func signedHelperExec() error {
	ctx, cancel := reqHelperCtx()
	defer cancel()
	fd, err := dialUnixFD(ctx, os.Getenv(signedDialEnv))
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "connection")
	// f holds fd, which the exec keeps: it must not be closed by f's
	// finalizer meanwhile.
	defer runtime.KeepAlive(f)
	c, err := NewConnectionFromFile(f)
	if err != nil {
		return err
	}
	c.Activate()
	if _, err := c.SendWithReply(ctx, Dict("op", "before")); err != nil {
		return fmt.Errorf("before the exec: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return err
	}
	prog := os.Getenv(signedExecEnv)
	env := []string{reqHelperEnv + "=after-exec", reqExecFDEnv + "=" + strconv.Itoa(fd)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, reqHelperEnv+"=") && !strings.HasPrefix(kv, signedHelperEnv+"=") {
			env = append(env, kv)
		}
	}
	return fmt.Errorf("exec %s: %w", prog, syscall.Exec(prog, []string{prog}, env))
}

// signedCommand is a command the test sends the checker, a line of JSON
// on its standard input; it answers each with a signedAnswer, a line on
// its standard output.
type signedCommand struct {
	Op   string   // "listen", "dial" or "peers"
	Path string   // the socket
	Reqs []string // listen: the listener's requirement (one); dial: one connection with each
	PID  int      // peers: the process whose connections to report
}

type signedAnswer struct {
	Err      string             // the command failed
	Outcomes []signedOutcome    // dial: how each connection's request fared
	Peers    []signedPeerRecord // peers: the connections of PID the listener handled
}

// signedPeerRecord is a peer connection a checker's listener handed its
// handler: the ops of the messages delivered, and how it ended.
type signedPeerRecord struct {
	PID   int
	Ops   []string
	Final signedOutcome
	done  chan struct{} // closed at the final event
}

// signedListener is a listener of the checker and the peers it handled.
type signedListener struct {
	l     *Listener
	mu    sync.Mutex
	peers []*signedPeerRecord
}

func (sl *signedListener) handle(p *Connection) {
	rec := &signedPeerRecord{PID: p.Peer().PID, done: make(chan struct{})}
	sl.mu.Lock()
	sl.peers = append(sl.peers, rec)
	sl.mu.Unlock()
	p.SetHandler(&signedRecorder{sl: sl, rec: rec})
	p.Activate()
}

// signedRecorder is the handler of a checker's peer connection: it
// records and echoes.
type signedRecorder struct {
	sl  *signedListener
	rec *signedPeerRecord
}

func (h *signedRecorder) HandleMessage(ctx context.Context, m *Message) {
	op, _ := m.Body.String("op")
	h.sl.mu.Lock()
	h.rec.Ops = append(h.rec.Ops, op)
	h.sl.mu.Unlock()
	echo(ctx, m)
}

func (h *signedRecorder) HandleEvent(err error) {
	if !errors.Is(err, ErrInvalid) {
		return
	}
	h.sl.mu.Lock()
	h.rec.Final = outcomeOf(err)
	h.sl.mu.Unlock()
	close(h.rec.done)
}

// peersOf waits for the connections of pid the listener handled to end,
// and returns them.
func (sl *signedListener) peersOf(ctx context.Context, pid int) ([]signedPeerRecord, error) {
	sl.mu.Lock()
	var recs []*signedPeerRecord
	for _, r := range sl.peers {
		if r.PID == pid {
			recs = append(recs, r)
		}
	}
	sl.mu.Unlock()
	out := make([]signedPeerRecord, 0, len(recs))
	for _, r := range recs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("a connection of pid %d did not end", pid)
		}
		sl.mu.Lock()
		out = append(out, signedPeerRecord{PID: r.PID, Ops: slices.Clone(r.Ops), Final: r.Final})
		sl.mu.Unlock()
	}
	return out, nil
}

// signedHelperChecker is the checker helper.
func signedHelperChecker() error {
	listeners := map[string]*signedListener{}
	defer func() {
		for _, sl := range listeners {
			sl.l.Cancel()
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var cmd signedCommand
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			return err
		}
		a, err := checkerDo(listeners, cmd)
		if err != nil {
			a.Err = err.Error()
		}
		if err := out.Encode(a); err != nil {
			return err
		}
	}
	return in.Err()
}

// checkerDo carries out one command of the checker's.
func checkerDo(listeners map[string]*signedListener, cmd signedCommand) (signedAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var a signedAnswer
	reqs := make([]Requirement, len(cmd.Reqs))
	for i, s := range cmd.Reqs {
		var err error
		if reqs[i], err = ParseRequirement(s); err != nil {
			return a, err
		}
	}
	switch cmd.Op {
	case "listen":
		if len(reqs) != 1 {
			return a, errors.New("listen takes one requirement")
		}
		l, err := ListenUnix(cmd.Path, 0o666, WithPeerRequirement(reqs[0]))
		if err != nil {
			return a, err
		}
		sl := &signedListener{l: l}
		l.SetHandler(sl.handle)
		l.Activate()
		listeners[cmd.Path] = sl
	case "dial":
		for _, r := range reqs {
			a.Outcomes = append(a.Outcomes, dialSigned(ctx, cmd.Path, WithPeerRequirement(r)))
		}
	case "peers":
		sl := listeners[cmd.Path]
		if sl == nil {
			return a, fmt.Errorf("no listener on %s", cmd.Path)
		}
		var err error
		a.Peers, err = sl.peersOf(ctx, cmd.PID)
		return a, err
	default:
		return a, fmt.Errorf("no command %q", cmd.Op)
	}
	return a, nil
}
