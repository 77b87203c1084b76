package xpc

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/goxpc/xpc/internal/sock"
	"golang.org/x/sys/unix"
)

// The read role.
//
// At most one goroutine at a time reads a link's socket: the one holding the
// read role (l.reading). Two kinds of goroutine take it.
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
// there gives the link a watch descriptor (an epoll instance holding only
// the socket, see watchFD), and from then on the watcher waits on that
// without the role: a caller then takes the role without waking the
// watcher, disarming the watch while it reads and re-arming it when it
// gives the role back. A watcher woken while someone else holds the role
// sets l.missed and goes back to sleep; whoever holds the role reads on
// before giving it up (tryRelease), so input that arrives at the hand-over
// is never left unread. A watcher that finds the role taken while the link
// has no watch (a caller came first) waits for the holder to hand it over
// (l.roleWanted, l.roleFree).
//
// Invariant: while a call is pending, or a goroutine waits for flow-control
// credit or socket buffer space, at least one watcher is not running a
// handler (l.idle > 0). So replies and credit are read even when the only
// watcher is busy in a handler that waits for them; a second watcher is
// started for that, and the surplus one ends when the handler returns.

// startWatcherLocked starts a watcher goroutine; l.mu is held.
func (l *link) startWatcherLocked() {
	l.watchers++
	l.idle++
	go l.watchLoop()
}

// needReaderLocked makes sure some watcher is free to read; l.mu is held.
func (l *link) needReaderLocked() {
	if l.deferred {
		l.deferred = false
		l.startWatcherLocked()
		return
	}
	if l.err == nil && l.idle == 0 {
		l.startWatcherLocked()
	}
}

// ensureWatcher gives a deferred link its first watcher. It starts even on
// a dead link: the watcher is what reports the end and releases the
// link's count in c.workers.
func (l *link) ensureWatcher() {
	l.mu.Lock()
	if l.deferred {
		l.deferred = false
		l.startWatcherLocked()
	}
	l.mu.Unlock()
}

// waiting counts a goroutine that starts (+1) or stops (-1) waiting for
// something only the peer's frames can bring: credit, or buffer space (the
// peer may be blocked sending to us).
func (l *link) waiting(delta int) {
	l.mu.Lock()
	l.waiters += delta
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
	l.watchers--
	l.idle--
	last := l.watchers == 0
	l.mu.Unlock()
	if last {
		// The link is dead (watchers end only then, or as a surplus).
		// Its event is delivered from here, not from a new goroutine.
		run := l.c.linkDied(l, l.dead())
		l.c.workers.Done()
		if run && l.c.deliverQueued() {
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
		for !l.tryRelease() {
			if !l.drainNow() {
				l.forceRelease()
				break
			}
		}
		held = false
		l.mu.Lock()
		l.idle--
		if l.idle == 0 && (len(l.pending) > 0 || l.waiters > 0) {
			l.needReaderLocked()
		}
		l.mu.Unlock()
		if l.c.deliverQueued() {
			l.fail(l.c.Err())
			l.mu.Lock()
			l.idle++
			l.mu.Unlock()
			return true, false
		}
		l.mu.Lock()
		if l.idle > 0 {
			// Another watcher took over while the handler ran.
			l.watchers--
			l.mu.Unlock()
			return false, true
		}
		l.idle++
		l.mu.Unlock()
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
			w := l.s.Watch()
			l.mu.Lock()
			if !l.reading && l.err == nil {
				l.reading = true
				*held = true
			}
			err := l.err
			wait := !*held && err == nil && w == nil
			if wait {
				// Without a watch there is nothing to wait on but the
				// holder's hand-over (tryRelease), which is rare: a
				// caller took the role while this watcher was starting
				// or running a handler. Making a watch for it would cost
				// a link used for one request (a lookup) an epoll
				// instance.
				l.roleWanted = true
				if l.roleFree == nil {
					l.roleFree = make(chan struct{}, 1)
				}
			}
			free := l.roleFree
			l.mu.Unlock()
			if err != nil {
				return sock.Datagram{}, err
			}
			if wait {
				<-free
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
		// Wait on the watch, without the role.
		var d sock.Datagram
		var derr error
		err := l.s.WaitWatch(w, func(uintptr) bool {
			l.mu.Lock()
			if l.reading {
				l.missed = true
				l.mu.Unlock()
				return false
			}
			l.reading = true
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
		*held = true
		return d, derr
	}
}

// tryRelease gives up the read role, unless a watcher found it held since
// it was taken: input may then be waiting that nobody else will read, and
// the holder keeps the role and must read on (until EAGAIN) first.
func (l *link) tryRelease() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.missed && l.err == nil {
		l.missed = false
		return false
	}
	l.releaseLocked()
	return true
}

// forceRelease gives up the role after reading found nothing since the last
// tryRelease: the watcher that asked was answered.
func (l *link) forceRelease() {
	l.mu.Lock()
	l.releaseLocked()
	l.mu.Unlock()
}

func (l *link) releaseLocked() {
	l.missed = false
	l.reading = false
	l.wakeRoleWaiterLocked()
}

// wakeRoleWaiterLocked wakes a watcher waiting for the role without a
// watch; l.mu is held.
func (l *link) wakeRoleWaiterLocked() {
	if l.roleWanted {
		l.roleWanted = false
		select {
		case l.roleFree <- struct{}{}:
		default:
		}
	}
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
	if l.reading || l.err != nil {
		busy := l.reading
		if busy && w == nil {
			l.handoffs++
		}
		makeWatch := busy && w == nil && l.handoffs == 2
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
	l.reading = true
	l.mu.Unlock()
	if w != nil {
		l.s.Arm(w, false)
	}
	for !call.isDone() {
		d, err := l.s.RecvCtx(ctx)
		if err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				l.fail(l.readError(err))
			}
			break
		}
		if _, err := l.handle(d, false); err != nil {
			l.fail(err)
			break
		}
	}
	if w != nil {
		l.s.Arm(w, true)
	}
	// Input that came while the watch was off (or, without one, while
	// this goroutine had the role) is this goroutine's to read.
	if l.dead() == nil && !l.drainNow() {
		l.forceRelease()
		return
	}
	for !l.tryRelease() {
		// A watcher woke while this goroutine had the role.
		if !l.drainNow() {
			l.forceRelease()
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
	return l.protocolError("%v", err)
}
