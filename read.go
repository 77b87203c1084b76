package xpc

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/goxpc/xpc/internal/sock"
	"golang.org/x/sys/unix"
)

// readRole is a link's read role: the right to read its socket. At most one
// goroutine at a time holds it (held). Two kinds of goroutine take it.
//
//   - Watchers. A link has one watcher goroutine (briefly two, see below)
//     that reads whenever nobody else does. When it reads a message for a
//     connection with nothing queued and no handler running, it gives up the
//     role and runs the handler itself, so a request reaches its handler and
//     its reply leaves without a goroutine switch.
//   - Callers. A goroutine waiting for a reply (Call.Wait, SendWithReply)
//     that finds nobody reading reads the socket itself until its reply has
//     come, so the reply needs no goroutine switch either. Whatever else it
//     reads meanwhile (others' replies, messages, events) it hands on as a
//     watcher would, except that it never runs a handler.
//
// A watcher waits for input in one of two ways. At first it waits in the
// socket's own read, holding the role. The second caller that finds it
// there (handedOff) gives the link's socket a watch (an epoll instance
// holding only the socket, sock.Watch), and from then on the watcher waits
// on that without the role: a caller then takes the role without waking
// the watcher, disarming the watch while it reads and re-arming it when it
// gives the role back. A watcher woken while someone else holds the role
// marks it missed and goes back to sleep; whoever holds the role reads on
// before giving it up (tryRelease), so input that arrives at the hand-over
// is never left unread. A watcher that finds the role taken while the
// socket has no watch (a caller came first) waits for the holder to hand
// it over (waitHandover).
//
// Invariants:
//   - Only the holder reads the socket (Recv, RecvNow, RecvCtx), arms or
//     disarms its watch, and hands what it reads to link.handle.
//   - The holder gives the role up only through tryRelease (or release,
//     once reading found nothing since a tryRelease failed, or the link
//     is dead), so input a watcher woke for is always read.
//   - While a call is pending, or a goroutine waits for flow-control credit
//     or socket buffer space, at least one watcher is not running a handler
//     (idle > 0). So replies and credit are read even when the only watcher
//     is busy in a handler that waits for them; a second watcher is started
//     for that, and the surplus one ends when the handler returns.
//   - The link's count in Connection.workers is held from its first
//     watcher (or its deferral) until its last watcher has ended.
//
// The role's state is guarded by the link's mu, which also guards the
// reply table: a call registers itself and takes the role in two short
// critical sections of that one lock, and a lock of its own would add a
// lock and an unlock to every call. Its methods are called with l.mu held;
// they change the role's state and tell the link what to do.
type readRole struct {
	held     bool // some goroutine holds the role
	missed   bool // a watcher woke while the role was held
	watchers int  // watcher goroutines alive
	idle     int  // watchers not running a handler
	waiters  int  // goroutines waiting for credit or buffer space
	handoffs int  // callers that found a watcher reading, before a watch
	// deferred: the link has no watcher yet, because the caller that
	// dialed it reads its reply itself; it gets one when that caller is
	// done (ensureWatcher), or as soon as anything else needs reading.
	deferred bool
	// wanted: a watcher waits on free for the role (no watch); free is
	// made the first time one does.
	wanted bool
	free   chan struct{}
}

// take takes the role if nobody holds it.
func (r *readRole) take() bool {
	if r.held {
		return false
	}
	r.held = true
	return true
}

// tryRelease gives the role up, unless a watcher found it held since it
// was taken on a live link: input may then be waiting that nobody else
// will read, and the holder keeps the role and must read on (until
// EAGAIN) first.
func (r *readRole) tryRelease(dead bool) bool {
	if r.missed && !dead {
		r.missed = false
		return false
	}
	r.release()
	return true
}

// release gives the role up and wakes a watcher waiting for it.
func (r *readRole) release() {
	r.missed = false
	r.held = false
	r.wakeWaiter()
}

// wakeWaiter wakes a watcher waiting for the role without a watch.
func (r *readRole) wakeWaiter() {
	if r.wanted {
		r.wanted = false
		select {
		case r.free <- struct{}{}:
		default:
		}
	}
}

// waitHandover registers a watcher that waits for the holder to hand the
// role over, and returns what to wait on.
func (r *readRole) waitHandover() <-chan struct{} {
	r.wanted = true
	if r.free == nil {
		r.free = make(chan struct{}, 1)
	}
	return r.free
}

// missedBy notes a watcher woken while the role is held; it reports
// whether the role was held.
func (r *readRole) missedBy() bool {
	if r.held {
		r.missed = true
	}
	return r.held
}

// handedOff counts a caller that found the role held on a socket without
// a watch; true the second time: the socket should get one.
func (r *readRole) handedOff() bool {
	if !r.held {
		return false
	}
	r.handoffs++
	return r.handoffs == 2
}

// addWaiter counts a goroutine that starts (+1) or stops (-1) waiting for
// credit or buffer space.
func (r *readRole) addWaiter(delta int) { r.waiters += delta }

// addWatcher counts a watcher about to start, idle.
func (r *readRole) addWatcher() {
	r.watchers++
	r.idle++
}

// needWatcher reports whether a watcher must start for something to be
// read: the link's first, if it was deferred, or one more if none is idle
// on a live link. For a goroutine that will read what it needs itself
// (selfRead), a deferred link stays deferred.
func (r *readRole) needWatcher(dead, selfRead bool) bool {
	if r.deferred && selfRead {
		return false
	}
	if r.deferred {
		r.deferred = false
		return true
	}
	return !dead && r.idle == 0
}

// deferWatcher leaves a new link without a watcher until undefer or
// needWatcher.
func (r *readRole) deferWatcher() { r.deferred = true }

// undefer ends a deferral; it reports whether there was one (the link's
// first watcher must then start).
func (r *readRole) undefer() bool {
	was := r.deferred
	r.deferred = false
	return was
}

// toHandler counts a watcher that goes to run a handler; it reports
// whether another must start, so that pending replies and the credit
// waiters wait for are still read.
func (r *readRole) toHandler(pending int, dead bool) bool {
	r.idle--
	return r.idle == 0 && (pending > 0 || r.waiters > 0) && !dead
}

// fromHandler counts a watcher back from a handler. It reports whether the
// watcher is surplus (another took over meanwhile, and the handler did not
// deliver the connection's final event): it is then counted out, and ends.
func (r *readRole) fromHandler(final bool) (surplus bool) {
	if !final && r.idle > 0 {
		r.watchers--
		return true
	}
	r.idle++
	return false
}

// watcherEnded counts a watcher out; true if it was the last.
func (r *readRole) watcherEnded() (last bool) {
	r.watchers--
	r.idle--
	return r.watchers == 0
}

// startReading gives a new link its first watcher or, if deferred, none
// until the caller that dialed it is done (ensureWatcher).
func (l *link) startReading(deferred bool) {
	l.mu.Lock()
	if deferred {
		l.rd.deferWatcher()
	} else {
		l.startWatcherLocked()
	}
	l.mu.Unlock()
}

// startWatcherLocked starts a watcher goroutine; l.mu is held.
func (l *link) startWatcherLocked() {
	l.rd.addWatcher()
	go l.watchLoop()
}

// needReaderLocked makes sure some watcher is free to read; l.mu is held.
func (l *link) needReaderLocked() {
	if l.rd.needWatcher(l.err != nil, false) {
		l.startWatcherLocked()
	}
}

// ensureWatcher gives a deferred link its first watcher. It starts even on
// a dead link: the watcher is what reports the end and releases the
// link's count in c.workers.
func (l *link) ensureWatcher() {
	l.mu.Lock()
	if l.rd.undefer() {
		l.startWatcherLocked()
	}
	l.mu.Unlock()
}

// waiting counts a goroutine that starts (+1) or stops (-1) waiting for
// something only the peer's frames can bring: credit, or buffer space (the
// peer may be blocked sending to us).
func (l *link) waiting(delta int) {
	l.mu.Lock()
	l.rd.addWaiter(delta)
	if delta > 0 {
		l.needReaderLocked()
	}
	l.mu.Unlock()
}

// watchLoop is a watcher goroutine.
func (l *link) watchLoop() {
	final, surplus := l.watch()
	if surplus {
		// Counted out already by watch; another watcher carries on.
		return
	}
	l.mu.Lock()
	last := l.rd.watcherEnded()
	l.mu.Unlock()
	if last {
		// The link is dead (watchers end only then, or as a surplus).
		// Its event is delivered from here, not from a new goroutine.
		if l.c.linkDied(l, l.dead()) && l.c.deliverQueued() {
			final = true
		}
	}
	if final {
		l.c.finish()
	}
}

// watch reads and delivers until the link dies. It reports whether it
// delivered the connection's final event (the caller must then finish the
// connection), and whether it ended as a surplus watcher.
func (l *link) watch() (final, surplus bool) {
	held := false
	for {
		d, err := l.watchNext(&held)
		if err != nil {
			l.fail(l.readError(err))
			l.releaseHeld(&held)
			return false, false
		}
		run, err := l.handle(d, true)
		if err != nil {
			l.fail(err)
			l.releaseHeld(&held)
			return false, false
		}
		if !run {
			continue
		}
		// Deliver what was queued, without the role: first hand it
		// back, reading on while a watcher asks for it.
		l.handBack()
		held = false
		l.mu.Lock()
		if l.rd.toHandler(len(l.pending), l.err != nil) {
			l.startWatcherLocked()
		}
		l.mu.Unlock()
		final := l.c.deliverQueued()
		if final {
			l.fail(l.c.Err())
		}
		l.mu.Lock()
		surplus := l.rd.fromHandler(final)
		l.mu.Unlock()
		if final || surplus {
			return final, surplus
		}
	}
}

// handBack gives the role up, first reading what a watcher woke for while
// it was held.
func (l *link) handBack() {
	for !l.tryRelease() {
		if !l.drainNow() {
			l.forceRelease()
			return
		}
	}
}

// drainNow reads and hands on frames while some are waiting, holding the
// role. It returns false if the link failed (and has been failed).
func (l *link) drainNow() bool {
	for {
		d, err := l.s.RecvNow()
		if errors.Is(err, sock.ErrWouldBlock) {
			return true
		}
		if err != nil {
			l.fail(l.readError(err))
			return false
		}
		if _, err := l.handle(d, false); err != nil {
			l.fail(err)
			return false
		}
	}
}

// watchNext returns the next datagram for a watcher, which holds the role
// when it returns (*held), with a datagram or an error.
func (l *link) watchNext(held *bool) (sock.Datagram, error) {
	for {
		if !*held {
			again, err := l.takeForWatcher(held)
			if err != nil {
				return sock.Datagram{}, err
			}
			if again {
				continue
			}
		}
		w := l.s.Watch()
		if *held && w == nil {
			// No caller has wanted the role yet: wait in the socket.
			return l.s.Recv()
		}
		if w == nil {
			var err error
			if w, err = l.s.StartWatch(); err != nil {
				return sock.Datagram{}, err
			}
		}
		if *held {
			d, err := l.s.RecvNow()
			if !errors.Is(err, sock.ErrWouldBlock) {
				return d, err
			}
			if !l.tryRelease() {
				continue
			}
			*held = false
		}
		d, err := l.waitWatch(w)
		if err != nil {
			return sock.Datagram{}, err
		}
		*held = true
		return d, nil
	}
}

// takeForWatcher takes the role for a watcher if it is free (*held). If it
// is not and the socket has no watch, it waits for the holder to hand it
// over and reports that the watcher is to try again.
func (l *link) takeForWatcher(held *bool) (again bool, err error) {
	w := l.s.Watch()
	l.mu.Lock()
	if l.err == nil && l.rd.take() {
		*held = true
	}
	err = l.err
	var free <-chan struct{}
	if !*held && err == nil && w == nil {
		// Without a watch there is nothing to wait on but the holder's
		// hand-over (tryRelease), which is rare: a caller took the role
		// while this watcher was starting or running a handler. Making
		// a watch for it would cost a link used for one request (a
		// lookup) an epoll instance.
		free = l.rd.waitHandover()
	}
	l.mu.Unlock()
	if err != nil {
		return false, err
	}
	if free != nil {
		<-free
		return true, nil
	}
	return false, nil
}

// waitWatch waits on the watch, without the role, until the socket has
// input and the role is free, and returns the datagram read with the role
// taken. A wake-up while someone else holds the role is marked missed for
// the holder, who reads on.
func (l *link) waitWatch(w *sock.Watch) (sock.Datagram, error) {
	var d sock.Datagram
	var derr error
	err := l.s.WaitWatch(w, func(uintptr) bool {
		l.mu.Lock()
		if l.rd.missedBy() {
			l.mu.Unlock()
			return false
		}
		l.rd.take()
		l.mu.Unlock()
		d, derr = l.s.RecvNow()
		if errors.Is(derr, sock.ErrWouldBlock) {
			if l.tryRelease() {
				return false
			}
			// Someone woke meanwhile: read on.
			d, derr = l.s.RecvNow()
			if errors.Is(derr, sock.ErrWouldBlock) {
				l.forceRelease()
				return false
			}
		}
		return true
	})
	if err != nil {
		return sock.Datagram{}, err
	}
	return d, derr
}

// tryRelease gives up the read role, unless the holder must read on first
// (readRole.tryRelease).
func (l *link) tryRelease() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rd.tryRelease(l.err != nil)
}

// forceRelease gives up the role after reading found nothing since the last
// tryRelease: the watcher that asked was answered.
func (l *link) forceRelease() {
	l.mu.Lock()
	l.rd.release()
	l.mu.Unlock()
}

func (l *link) releaseHeld(held *bool) {
	if *held {
		l.forceRelease()
		*held = false
	}
}

// awaitReply is called by a goroutine about to wait for call. If nobody is
// reading the link it takes the role and reads until call is done, ctx
// ends or the link dies; otherwise it returns at once and the caller waits
// for the reader to complete call.
func (l *link) awaitReply(ctx context.Context, call *Call) {
	w := l.s.Watch()
	l.mu.Lock()
	if l.err != nil || !l.rd.take() {
		makeWatch := w == nil && l.rd.handedOff()
		l.mu.Unlock()
		if makeWatch {
			// Callers keep finding a watcher waiting in the socket read,
			// so each reply costs a goroutine switch: give the link a
			// watch, which that watcher waits on from its next turn on,
			// so callers can read without waking it. (A link used for
			// one request, such as a lookup, never needs one.) If this
			// fails, watchers go on reading for callers.
			_, _ = l.s.StartWatch()
		}
		return
	}
	l.mu.Unlock()
	if w != nil {
		l.s.Arm(w, false)
	}
	l.readUntil(ctx, call)
	if w != nil {
		l.s.Arm(w, true)
	}
	// Input that came while the watch was off (or, without one, while
	// this goroutine had the role) is this goroutine's to read.
	if l.dead() == nil && !l.drainNow() {
		l.forceRelease()
		return
	}
	l.handBack()
}

// readUntil reads and hands on frames, holding the role, until call is
// done, ctx ends or the link dies.
func (l *link) readUntil(ctx context.Context, call *Call) {
	for !call.isDone() {
		d, err := l.s.RecvCtx(ctx)
		if err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				l.fail(l.readError(err))
			}
			return
		}
		if _, err := l.handle(d, false); err != nil {
			l.fail(err)
			return
		}
	}
}

// readError turns an error from reading the socket into the link's error.
func (l *link) readError(err error) error {
	if e := l.dead(); e != nil {
		return e
	}
	if errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) {
		return l.lostError(nil)
	}
	if errors.Is(err, os.ErrClosed) {
		return l.lostError(err)
	}
	return l.protocolError("%s", causeText(err))
}
