package xpcd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// server is the bootstrap server component: the socket clients, services
// and xpcctl connect to. Each connection is a session whose handler reads
// the request's "op" and asks the supervisor. The caller's identity is
// the kernel's (SO_PEERCRED at connect), never anything in a request.
type server struct {
	m     *supervisor
	paths bootstrap.Paths
	user  bool
	log   *slog.Logger

	l *xpc.Listener
	// systemSocket: a --user instance passes the lookups it cannot
	// resolve, naming no domain, to the system instance there
	// (forward.go); "" for none.
	systemSocket string
	forwardCtx   context.Context // ends when the server closes
	endForwards  context.CancelFunc
	// maxPerUser caps a uid's sessions (Config.MaxConnectionsPerUser);
	// negative: no cap.
	maxPerUser int
	// maxTotal caps the sessions of all users but root together, so that
	// descriptors are left for root whoever holds the rest; 0: no cap.
	maxTotal int

	mu       sync.Mutex
	sessions map[*session]struct{}
	// perUser counts the live sessions of each uid: one more as accept
	// takes a connection, one less as it ends (session.HandleEvent).
	// admit reads it on the same goroutine as accept, so no connection
	// slips in between the check and the count.
	nonRoot int // sessions of users other than root
	perUser map[uint32]int
	closed  bool
	waits   sync.WaitGroup // deferred replies being waited for
}

func newServer(m *supervisor, paths bootstrap.Paths, user bool, log *slog.Logger) *server {
	s := &server{m: m, paths: paths, user: user, log: log, sessions: map[*session]struct{}{}, perUser: map[uint32]int{}}
	s.forwardCtx, s.endForwards = context.WithCancel(context.Background())
	return s
}

func (s *server) name() string { return "bootstrap" }

// bind makes the socket, first of all, so that a second xpcd for the same
// paths fails (the socket is live) before it touches anything. Clients
// that connect before start wait in the backlog.
func (s *server) bind() error {
	dirMode, sockMode := os.FileMode(0o755), os.FileMode(0o666)
	if s.user {
		dirMode, sockMode = 0o700, 0o600
	}
	if err := prepareDirs(s.paths, dirMode); err != nil {
		return err
	}
	if err := os.MkdirAll(s.paths.RunDir, dirMode); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if err := os.Chmod(s.paths.RunDir, dirMode); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	l, err := xpc.ListenUnix(s.paths.Socket, sockMode, connOptions()...)
	if err != nil {
		return err
	}
	l.SetAdmission(s.admit)
	l.SetHandler(s.accept)
	s.l = l
	s.log.Info("listening", "socket", s.paths.Socket, "mode", sockMode)
	return nil
}

// prepareDirs makes sure, in a root xpcd, that nobody but root can change
// its directories (bootstrap.RuleDirOwner): XPCD_ROOT, the run and state directories,
// LaunchAgents and LaunchDaemons, and every directory above them, must
// belong to root and be writable by nobody else (a sticky directory such as
// /tmp excepted), and none of the five may be a symbolic link. Otherwise a
// user who owns XPCD_ROOT could plant links that make xpcd change root's
// files, or state that xpcd would act on. The run and state directories
// are made (runMode, 0700) between two checks, so that one made by someone
// else in the meantime is caught. A state directory that cannot be made
// (a read-only file system) is not an error: the state store starts
// read-only without it. A xpcd that is not root checks nothing: it can do
// no more than its user can.
func prepareDirs(p bootstrap.Paths, runMode os.FileMode) error {
	if os.Geteuid() != 0 {
		return nil
	}
	mustExist := map[string]bool{}
	check := func() error {
		for _, d := range []string{p.Root, p.RunDir, p.StateDir, p.Agents, p.Daemons} {
			if d == "" {
				continue
			}
			err := checkTrusted(d, []uint32{0}, true)
			if err == nil || !mustExist[d] && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if errors.Is(err, errNotTrusted) {
				return refusedBy(bootstrap.RuleDirOwner, "%v", err)
			}
			return err
		}
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	if err := os.MkdirAll(p.RunDir, runMode); err != nil {
		return err
	}
	mustExist[p.RunDir] = true
	if err := os.MkdirAll(p.StateDir, 0o700); err == nil {
		mustExist[p.StateDir] = true
	} else if !cannotWrite(err) {
		return err
	}
	return check()
}

// start accepts connections.
func (s *server) start(context.Context) error {
	s.l.Activate()
	return nil
}

// binder is the component that binds the server's socket.
type binder struct{ s *server }

func (b binder) name() string                { return "socket" }
func (b binder) start(context.Context) error { return b.s.bind() }
func (b binder) close(context.Context) error {
	if b.s.l != nil {
		b.s.l.Cancel() // in case start was never reached
	}
	return nil
}

// close stops accepting and ends every session: clients reconnect to the
// next xpcd; services re-adopt.
func (s *server) close(ctx context.Context) error {
	s.endForwards()
	if s.l == nil {
		return nil
	}
	s.l.Cancel()
	s.mu.Lock()
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.conn.Cancel()
	}
	var err error
	wait := func(c <-chan struct{}) {
		if err != nil {
			return
		}
		select {
		case <-c:
		case <-ctx.Done():
			err = fmt.Errorf("bootstrap server: %w", ctx.Err())
		}
	}
	wait(s.l.Done())
	for _, ss := range sessions {
		wait(ss.conn.Done())
	}
	s.waits.Wait()
	return err
}

// admit turns a connection away, with reason too-many-connections, when
// its uid (the kernel's word) already has maxPerUser sessions. Root is
// never turned away.
func (s *server) admit(p *xpc.Peer) *xpc.ErrorObject {
	if p.UID == 0 {
		return nil
	}
	bucket := s.m.buckets.of(p.UID)
	s.mu.Lock()
	n, total := s.perUser[bucket], s.nonRoot
	s.mu.Unlock()
	var desc string
	switch {
	case s.maxTotal > 0 && total >= s.maxTotal:
		// Root's reserve: descriptors are kept for root, whoever
		// holds the rest.
		desc = fmt.Sprintf("users other than root have %d connections to xpcd, the limit for all of them together", total)
	case s.maxPerUser >= 0 && n >= s.maxPerUser:
		desc = fmt.Sprintf("%s has %d connections to xpcd, the limit (--max-connections-per-user)", bucketName(bucket), n)
	default:
		return nil
	}
	s.log.Debug("connection turned away", "peer_pid", p.PID, "peer_uid", p.UID, "connections", n, "all_users", total)
	oe := &opError{reason: bootstrap.ReasonTooManyConnections, desc: desc}
	return oe.object()
}

func (s *server) accept(conn *xpc.Connection) {
	peer := conn.Peer()
	if peer == nil {
		conn.Cancel()
		return
	}
	ss := &session{s: s, m: s.m, conn: conn, peer: peer, bucket: s.m.buckets.of(peer.UID),
		log: s.log.With("peer_pid", peer.PID, "peer_uid", peer.UID)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Cancel()
		return
	}
	s.sessions[ss] = struct{}{}
	s.perUser[ss.bucket]++
	if peer.UID != 0 {
		s.nonRoot++
	}
	s.mu.Unlock()
	conn.SetHandler(ss)
	conn.Activate()
}

// session is one bootstrap connection.
type session struct {
	s    *server
	m    *supervisor
	conn *xpc.Connection
	peer *xpc.Peer
	log  *slog.Logger

	// Owned by the handler (one message at a time).
	ensured map[string]bool // user domains known to exist (see ensure)
	adopted *instance
	adoptCh *channel
	watch   *watcher
	// waiting counts the requests answered later (a waitFunc) still
	// waiting; at most maxWaitsPerSession.
	waiting atomic.Int32
	// bucket is what the per-user limits count this peer under.
	bucket uint32
}

func (ss *session) HandleEvent(err error) {
	if !errors.Is(err, xpc.ErrInvalid) {
		return
	}
	if errors.Is(err, xpc.ErrProtocol) {
		// A request over the size limit, or worse: say why the client
		// was cut off (debug: a hostile client must not fill the log).
		ss.log.Debug("connection cut off", "err", err)
	}
	adopted, adoptCh, w := ss.adopted, ss.adoptCh, ss.watch
	ss.m.post(func() {
		if w != nil {
			delete(ss.m.watchers, w)
			w.ch.close()
		}
		if adopted != nil {
			ss.m.channelLost(adopted, adoptCh)
		} else if adoptCh != nil {
			adoptCh.close()
		}
	})
	ss.s.mu.Lock()
	delete(ss.s.sessions, ss)
	if errors.Is(err, xpc.ErrPeerOverLimit) && ss.peer.UID != 0 {
		// (It stays in nonRoot too.)
		// Cut off for leaving replies unread (or sending past its
		// queue): the out-of-line replies already in its socket stay
		// in memory for as long as the client keeps its end, which
		// xpcd cannot see once its own end is closed. The connection
		// keeps its place in the user's count until xpcd restarts, so
		// that what a user can pin is bounded by the cap.
		ss.log.Warn("connection cut off over a limit; it counts against the user's connections until xpcd restarts", "err", err)
	} else {
		if ss.s.perUser[ss.bucket]--; ss.s.perUser[ss.bucket] <= 0 {
			delete(ss.s.perUser, ss.bucket)
		}
		if ss.peer.UID != 0 {
			ss.s.nonRoot--
		}
	}
	ss.s.mu.Unlock()
}

func (ss *session) HandleMessage(ctx context.Context, msg *xpc.Message) {
	op, _ := msg.Body.String(bootstrap.KeyOp)
	if op == bootstrap.OpLookup {
		ss.lookup(ctx, msg)
		return
	}
	// No other request carries descriptors xpcd keeps.
	defer xpc.CloseAttachments(msg.Body)
	switch op {
	case bootstrap.OpAdopt:
		ss.adopt(ctx, msg)
	case bootstrap.OpCheckin, bootstrap.OpTransactions:
		ss.channelMessage(ctx, op, msg)
	case bootstrap.OpWatch:
		ss.startWatch(ctx, msg)
	default:
		h := adminOps[op]
		if h == nil {
			ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: fmt.Sprintf("unknown op %q", op)})
			return
		}
		if ss.waiting.Load() >= maxWaitsPerSession {
			// Each costs a goroutine and the request until it is
			// answered; the message's credit came back when it was
			// taken, so flow control does not bound them.
			ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBusy, desc: fmt.Sprintf(
				"%s: %d requests on this connection are still waiting for their answer, the limit", op, maxWaitsPerSession)})
			return
		}
		reply, wait, oe := h(ss, msg.Body)
		if oe != nil {
			ss.fail(ctx, msg, oe)
			return
		}
		if wait != nil {
			// Wait without holding up the connection's other requests.
			msg.Defer()
			ss.s.waits.Add(1)
			ss.waiting.Add(1)
			go func() {
				defer ss.s.waits.Done()
				defer ss.waiting.Add(-1)
				reply, oe := wait(ctx)
				if oe != nil {
					ss.fail(ctx, msg, oe)
					return
				}
				ss.reply(ctx, msg, reply)
			}()
			return
		}
		ss.reply(ctx, msg, reply)
	}
}

func (ss *session) reply(ctx context.Context, msg *xpc.Message, d *xpc.Dictionary) {
	if !msg.WantsReply() {
		return
	}
	if d == nil {
		d = &xpc.Dictionary{}
	}
	if err := msg.Reply(ctx, d); err != nil {
		ss.log.Debug("reply failed", "err", err)
	}
}

func (ss *session) fail(ctx context.Context, msg *xpc.Message, oe *opError) {
	if !msg.WantsReply() {
		return
	}
	if err := msg.ReplyError(ctx, oe.object()); err != nil {
		ss.log.Debug("reply failed", "err", err)
	}
}

// do runs fn on the supervisor's loop and waits for it. It does not give up
// early (fn may take ownership of what the request carried); the loop
// never blocks, so it is quick.
func (ss *session) do(fn func()) *opError {
	if err := ss.m.call(context.Background(), fn); err != nil {
		return &opError{reason: bootstrap.ReasonShuttingDown, desc: err.Error()}
	}
	return nil
}

// lookup: {"op":"lookup","name":NAME,"domain":DOMAIN?,"socket":FD}. As a
// request it is answered with {} or an error. Sent as a one-way message it
// is pipelined: the client is already writing to its end of the socket
// pair, nobody waits for this session, and a failure is told to the client
// on that socket (refuse).
func (ss *session) lookup(ctx context.Context, msg *xpc.Message) {
	body := msg.Body
	fd, _ := body.Get(bootstrap.KeySocket).(*xpc.FD)
	if fd != nil {
		body.Delete(bootstrap.KeySocket)
	}
	xpc.CloseAttachments(body)
	name, err := body.String(bootstrap.KeyName)
	var oe *opError
	switch {
	case err != nil:
		oe = &opError{reason: bootstrap.ReasonBadRequest, desc: "lookup: no name"}
	case fd == nil:
		oe = &opError{reason: bootstrap.ReasonBadRequest, desc: "lookup: no socket"}
	}
	dom, _ := body.String(bootstrap.KeyDomain)
	if oe == nil {
		ss.ensureOwn()
		if dn, owner, err := ParseDomain(dom); err == nil && dom != "" && mayRead(ss.peer.UID, dn, owner) {
			ss.ensure(dn, owner)
		}
		uid, pid := ss.peer.UID, ss.peer.PID
		if !msg.WantsReply() {
			if ss.m.post(func() {
				switch oe := ss.m.lookup(uid, ss.bucket, pid, name, dom, fd); {
				case oe == nil:
				case ss.s.forwards(dom, oe):
					ss.forward(name, fd, nil, oe)
				default:
					ss.refused(name, fd, oe)
				}
			}) {
				return
			}
			oe = &opError{reason: bootstrap.ReasonShuttingDown, desc: errStopped.Error()}
		} else if e := ss.do(func() { oe = ss.m.lookup(uid, ss.bucket, pid, name, dom, fd) }); e != nil {
			oe = e
		}
	}
	if oe == nil {
		ss.reply(ctx, msg, nil)
		return
	}
	switch {
	case fd != nil && msg.WantsReply() && ss.s.forwards(dom, oe):
		ss.forward(name, fd, msg, oe)
	case fd != nil && !msg.WantsReply():
		ss.refused(name, fd, oe)
	case fd != nil:
		fd.Close()
		fallthrough
	default:
		ss.log.Debug("lookup failed", "name", name, "reason", oe.reason, "err", oe.desc)
		ss.fail(ctx, msg, oe)
	}
}

// refused tells the client of a pipelined lookup that it failed.
func (ss *session) refused(name string, fd *xpc.FD, oe *opError) {
	ss.log.Debug("lookup failed", "name", name, "reason", oe.reason, "err", oe.desc)
	if err := refuse(fd, oe); err != nil {
		ss.log.Debug("lookup: the client did not get its refusal", "name", name, "err", err)
	}
}

// adopt: {"op":"adopt","label":LABEL} from a service whose check-in
// channel is gone (xpcd restarted): if the kernel says the caller is the
// process xpcd launched for LABEL, this connection becomes its check-in
// channel.
func (ss *session) adopt(ctx context.Context, msg *xpc.Message) {
	label, err := msg.Body.String(bootstrap.KeyLabel)
	if err != nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: "adopt: no label"})
		return
	}
	if ss.adopted != nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: "adopt: this connection is already a check-in channel"})
		return
	}
	if !ss.peer.Alive() {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonDenied, desc: "adopt: the caller has exited"})
		return
	}
	ch := newChannel(ss.conn, 0)
	msg.Defer()
	var inst *instance
	var oe *opError
	if e := ss.do(func() { inst, oe = ss.m.adopt(label, ss.peer.PID, ch, msg) }); e != nil {
		oe = e
	}
	if oe != nil {
		ch.close()
		ss.fail(ctx, msg, oe)
		return
	}
	ss.adopted, ss.adoptCh = inst, ch
}

// channelMessage: checkin and transactions on an adopted connection.
func (ss *session) channelMessage(ctx context.Context, op string, msg *xpc.Message) {
	inst, ch := ss.adopted, ss.adoptCh
	if inst == nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest,
			desc: op + ": not a check-in channel (a service launched by xpcd checks in on descriptor $" + bootstrap.CheckinFDEnv + ", or adopts after a restart)"})
		return
	}
	handleChannelMessage(ctx, ss.m, inst, ch, op, msg)
}

// handleChannelMessage handles what a service sends on its check-in
// channel, whichever connection that is.
func handleChannelMessage(ctx context.Context, m *supervisor, inst *instance, ch *channel, op string, msg *xpc.Message) {
	switch op {
	case bootstrap.OpCheckin:
		name, err := msg.Body.String(bootstrap.KeyName)
		if err != nil {
			if msg.WantsReply() {
				msg.ReplyError(ctx, (&opError{reason: bootstrap.ReasonBadRequest, desc: "checkin: no name"}).object())
			}
			return
		}
		msg.Defer()
		m.post(func() { m.checkin(inst, ch, name, msg) })
	case bootstrap.OpTransactions:
		n, err := msg.Body.Int64(bootstrap.KeyCount)
		if err != nil {
			return
		}
		m.post(func() { m.transactions(inst, ch, int(n)) })
	default:
		if msg.WantsReply() {
			msg.ReplyError(ctx, (&opError{reason: bootstrap.ReasonBadRequest, desc: fmt.Sprintf("unknown op %q on a check-in channel", op)}).object())
		}
	}
}

// checkinHandler handles the check-in channel of an instance xpcd launched
// (descriptor 3 of the service).
type checkinHandler struct {
	m    *supervisor
	inst *instance
	ch   *channel
}

func (h *checkinHandler) HandleMessage(ctx context.Context, msg *xpc.Message) {
	defer xpc.CloseAttachments(msg.Body)
	op, _ := msg.Body.String(bootstrap.KeyOp)
	handleChannelMessage(ctx, h.m, h.inst, h.ch, op, msg)
}

func (h *checkinHandler) HandleEvent(err error) {
	if errors.Is(err, xpc.ErrInvalid) {
		h.m.post(func() { h.m.channelLost(h.inst, h.ch) })
	}
}

// startWatch: {"op":"watch","target":TARGET?}. The reply comes first, then
// one {"event": JOB} message for every job the caller may read (matching
// the target), then one for each change until the connection ends. A job
// booted out gets a last event with state "unloaded". A watcher that falls
// watchLimit events behind gets {"overflow": true} and no more.
func (ss *session) startWatch(ctx context.Context, msg *xpc.Message) {
	w := &watcher{uid: ss.peer.UID, bucket: ss.bucket}
	ss.ensureOwn()
	if ts, err := msg.Body.String(bootstrap.KeyTarget); err == nil && ts != "" {
		t, oe := ss.targetArg(msg.Body, false)
		if oe != nil {
			ss.fail(ctx, msg, oe)
			return
		}
		if !mayRead(ss.peer.UID, t.Domain, t.UID) {
			ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonDenied, desc: fmt.Sprintf("watch %s: uid %d may not read that domain", t, ss.peer.UID)})
			return
		}
		w.dom, w.label = t.Domain, t.Label
	}
	if ss.watch != nil {
		ss.fail(ctx, msg, &opError{reason: bootstrap.ReasonBadRequest, desc: "watch: this connection already watches"})
		return
	}
	w.ch = newChannel(ss.conn, watchLimit)
	msg.Defer()
	var refused *opError
	if oe := ss.do(func() { refused = ss.m.addWatcher(w, msg) }); oe != nil || refused != nil {
		w.ch.close()
		ss.fail(ctx, msg, cmp.Or(oe, refused))
		return
	}
	ss.watch = w
}

// addWatcher starts sending w the jobs it may see, unless its user has
// maxWatchersPerUser watchers already (bootstrap.RuleWatcherLimit): each may hold up
// to watchLimit unsent events, which a watcher that stops reading leaves
// in xpcd's memory. Root has no such limit.
func (m *supervisor) addWatcher(w *watcher, msg *xpc.Message) *opError {
	if w.uid != 0 {
		n := 0
		for o := range m.watchers {
			if o.bucket == w.bucket {
				n++
			}
		}
		if n >= maxWatchersPerUser {
			re := refusedBy(bootstrap.RuleWatcherLimit, "%s has %d watch connections already, the limit", bucketName(w.bucket), n)
			return ruleOpError(re, "watch: %s", re.Detail)
		}
	}
	w.ch.send(outItem{reply: msg, msg: &xpc.Dictionary{}})
	for _, d := range m.sortedDomains() {
		for _, j := range sortedJobs(d) {
			if w.matches(j) {
				w.ch.send(outItem{msg: xpc.Dict(bootstrap.KeyEvent, m.jobDict(j))})
			}
		}
	}
	m.watchers[w] = struct{}{}
	return nil
}
