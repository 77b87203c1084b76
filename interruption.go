package xpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/wire"
)

// Why a named service went away (ErrInterrupted) or is about to
// (ErrTerminationImminent). A service that xpcd stops says why in the
// terminating frame it sends its peers (its id, wire.Term*), and a
// connection that then loses it takes that reason. One that loses its
// service unannounced (an exit, a crash, a signal) asks xpcd, which keeps
// the reasons of recent exits, for at most exitReasonWait. Nothing of this
// costs anything while the service runs.

// exitReasonWait bounds how long a service connection that lost its
// service waits for xpcd to say why; its interruption then has
// ReasonUnknown. Its pending calls fail, and its handler hears of the
// interruption, that much later at most.
const exitReasonWait = 250 * time.Millisecond

// terminationCodes are the reason codes of a terminating frame's ids.
var terminationCodes = [...]string{
	wire.TermUnspecified:    ReasonUnknown,
	wire.TermIdleExit:       ReasonIdleExit,
	wire.TermUpgrade:        ReasonUpgrade,
	wire.TermKilled:         ReasonKilled,
	wire.TermMemoryPressure: ReasonMemoryPressure,
	wire.TermShuttingDown:   ReasonShuttingDown,
}

// stopTexts say, for people, why xpcd stops a service.
var stopTexts = map[string]string{
	ReasonIdleExit:       "idle exit",
	ReasonUpgrade:        "upgrade to a new version",
	ReasonKilled:         "stopped by an administrator",
	ReasonMemoryPressure: "memory pressure",
	ReasonShuttingDown:   "xpcd is shutting down",
}

// terminationNumber is the terminating frame's id for the reason code, as
// xpcd's terminate request names it; wire.TermUnspecified for one this
// package does not know.
func terminationNumber(code string) uint64 {
	for n, c := range terminationCodes {
		if c == code && c != ReasonUnknown {
			return uint64(n)
		}
	}
	return wire.TermUnspecified
}

// terminationReason is the reason of a terminating frame with id id.
func terminationReason(id uint64) *Reason {
	if id == wire.TermUnspecified || id >= uint64(len(terminationCodes)) {
		return &Reason{Code: ReasonUnknown, Description: "the peer is about to exit"}
	}
	code := terminationCodes[id]
	return &Reason{Code: code, Description: "the service is about to exit (" + stopTexts[code] + ")"}
}

// interruptionReason says why the link's service went away: the reason
// it announced, or else xpcd's answer. The first caller finds it out; the
// others (the reader and a sender may both see the loss) wait for it.
func (l *link) interruptionReason() *Reason {
	l.whyOnce.Do(func() { l.why = l.findWhy() })
	return l.why
}

func (l *link) findWhy() *Reason {
	if r := l.announced.Load(); r != nil && r.Code != ReasonUnknown {
		return &Reason{Code: r.Code, Description: "the service went away (" + stopTexts[r.Code] + ")"}
	}
	p := l.peer.Load()
	if p == nil || l.lookup == nil {
		// Nothing to ask about: the service never said who it is.
		return &Reason{Code: ReasonUnknown, Description: "the service went away"}
	}
	ctx, cancel := context.WithTimeout(l.ctx, exitReasonWait)
	defer cancel()
	r, err := askExitReason(ctx, *l.cfg, l.lookup.name, p.PID)
	if err != nil {
		return &Reason{Code: ReasonUnknown,
			Description: fmt.Sprintf("the service (pid %d) went away; xpcd did not say why (%s)", p.PID, causeText(err))}
	}
	return r
}

// askExitReason asks xpcd why pid, an instance of the service name, went
// away: through the Bootstrap, which asks once for all its connections
// that lost that process, or on a connection made for the question.
func askExitReason(ctx context.Context, cfg config, name string, pid int) (*Reason, error) {
	if cfg.boot != nil {
		return cfg.boot.exitReason(ctx, name, pid)
	}
	bc, err := dialBootstrap(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	defer bc.Cancel()
	return sendExitReason(ctx, bc, name, pid)
}

// whyKey names a question about an exit; whyCall is one in progress.
type whyKey struct {
	name string
	pid  int
}

type whyCall struct {
	done chan struct{}
	r    *Reason
	err  error
}

// exitReason asks xpcd, on b's connection, why pid of the service name
// went away. Connections that lost the same process at once (many
// connections to one service through one Bootstrap) share one question:
// the first asks, the others wait for its answer, each as long as its
// own ctx allows.
func (b *Bootstrap) exitReason(ctx context.Context, name string, pid int) (*Reason, error) {
	k := whyKey{name, pid}
	b.mu.Lock()
	w := b.whys[k]
	if w == nil {
		w = &whyCall{done: make(chan struct{})}
		if b.whys == nil {
			b.whys = make(map[whyKey]*whyCall)
		}
		b.whys[k] = w
		b.mu.Unlock()
		bc, err := b.get(ctx)
		if err == nil {
			w.r, w.err = sendExitReason(ctx, bc, name, pid)
		} else {
			w.err = err
		}
		b.mu.Lock()
		delete(b.whys, k)
		b.mu.Unlock()
		close(w.done)
		return w.r, w.err
	}
	b.mu.Unlock()
	select {
	case <-w.done:
		return w.r, w.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sendExitReason asks the question on bc, xpcd's connection.
func sendExitReason(ctx context.Context, bc *Connection, name string, pid int) (*Reason, error) {
	req := Dict(bootstrap.KeyOp, bootstrap.OpExitReason, bootstrap.KeyName, name, bootstrap.KeyPID, pid)
	for retry := exitReasonRetry; ; retry *= 2 {
		reply, err := bc.SendWithReply(ctx, req)
		if err == nil {
			return exitReasonOf(reply)
		}
		// Busy: the connection has as many questions waiting as xpcd
		// allows one connection (many connections lost services at
		// once). xpcd answers a question at once once it has seen the
		// exit: ask again, less and less often.
		var re *RemoteError
		if !errors.As(err, &re) || ReasonFromObject(re.Object).Code != ReasonBusy {
			return nil, err
		}
		select {
		case <-time.After(retry):
		case <-ctx.Done():
			return nil, err
		}
	}
}

// exitReasonRetry is how long a question xpcd was too busy to take first
// waits before it is asked again; each later wait is twice the one before.
const exitReasonRetry = 10 * time.Millisecond

// exitReasonOf reads OpExitReason's answer.
func exitReasonOf(reply *Dictionary) (*Reason, error) {
	r := reasonFromDict(reply)
	if r.Code == "" {
		return nil, errors.New("an answer without a reason")
	}
	r.Description, _ = reply.String(bootstrap.KeyDescription)
	return r, nil
}
