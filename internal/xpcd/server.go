package xpcd

import (
	"context"
	"errors"
	"fmt"
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
	// passed is the socket the caller bound (Config.Listener), or nil.
	passed *os.File
	// systemSocket: a --user instance passes the lookups it cannot
	// resolve, naming no domain or system, to the system instance there
	// (forward.go); "" for none.
	systemSocket string
	// exe is the executable this xpcd runs: an xpcd running the same one
	// may pass on its clients' lookups (lookup_client.go).
	exe         exeID
	pidfs       bool            // pidfds are on pidfs (onPIDFS)
	forwardCtx  context.Context // ends when the server closes
	endForwards context.CancelFunc
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
	// checks bounds the lookups being checked against requirements.
	checks checkLimiter
	notes  *notifyRegistry // notifications (notify.go)
	// apps remembers the executables in no bundle (apps_resolve.go).
	apps plainExes
}

func newServer(m *supervisor, paths bootstrap.Paths, user bool, log *slog.Logger) *server {
	s := &server{m: m, paths: paths, user: user, log: log, sessions: map[*session]struct{}{}, perUser: map[uint32]int{},
		exe: ownExecutable(), pidfs: onPIDFS()}
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
	l, err := s.listen(sockMode)
	if err != nil {
		return err
	}
	l.SetAdmission(s.admit)
	l.SetHandler(s.accept)
	s.l = l
	s.log.Info("listening", "socket", s.paths.Socket, "mode", sockMode, "passed", s.passed != nil)
	return nil
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
		pidfdID: pidfdID(peer, s.pidfs), exe: exeOfPID(peer.PID), log: s.log.With("peer_pid", peer.PID, "peer_uid", peer.UID)}
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
	notes   *notifyClient // its notification registrations, from the first
	// waiting counts the requests answered later (a waitFunc) still
	// waiting; at most maxWaitsPerSession.
	waiting atomic.Int32
	// bucket is what the per-user limits count this peer under.
	bucket uint32
	// pidfdID identifies the peer's process (pidfdID), taken at
	// connect: the connection closes the peer's pidfd when it ends,
	// which may be before its last lookup is handled.
	pidfdID uint64
	// exe is the executable the peer ran when it connected (exeOfPID; a
	// pid reused before it was read gives one the peer never ran, which
	// only refuses its lookups, and it has exited): a lookup is refused
	// once it runs another (lookupClient).
	exe exeID
	// app is the peer as the pid domain sees it, once read (appOf).
	app     *pidClient
	appDone bool
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
	ss.endNotify()
	ss.m.logs.unfollow(ss) // admin_log.go
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
	case bootstrap.OpCheckin, bootstrap.OpTransactions, bootstrap.OpEventHandler,
		bootstrap.OpActivityRegister, bootstrap.OpActivityUnregister, bootstrap.OpActivityState:
		ss.channelMessage(ctx, op, msg)
	case bootstrap.OpWatch:
		ss.startWatch(ctx, msg)
	case bootstrap.OpAppWatch:
		ss.startAppWatch(ctx, msg) // registry_watch.go
	case bootstrap.OpLog:
		ss.logRequest(ctx, msg) // admin_log.go
	case bootstrap.OpNotifyPost, bootstrap.OpNotifyRegister, bootstrap.OpNotifyCancel, bootstrap.OpNotifyGet:
		ss.notifyOp(ctx, op, msg)
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
