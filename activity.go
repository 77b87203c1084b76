package xpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// Errors of activities.
var (
	// ErrActivityNotFound: RegisterActivity without criteria for an
	// activity the job neither declares in its plist nor registered
	// before.
	ErrActivityNotFound = errors.New("no such activity")
	// ErrActivityState: SetState with a state the activity cannot move
	// to from where it is.
	ErrActivityState = errors.New("invalid activity state transition")
)

// ActivityState is where an activity is (xpc_activity_state_t).
type ActivityState int

// Activity states.
const (
	// ActivityCheckIn: the handler's first call for an activity
	// registered without criteria (checked in for the one the plist
	// declares, or one registered before).
	ActivityCheckIn ActivityState = iota
	// ActivityWait: waiting until it is due and its criteria hold.
	ActivityWait
	// ActivityRun: the handler's call to run it.
	ActivityRun
	// ActivityDefer: the run stops; xpcd runs it again once it is
	// eligible again (after a short backoff).
	ActivityDefer
	// ActivityContinue: the run goes on after the handler returns.
	ActivityContinue
	// ActivityDone: the run is over; a repeating activity is due again
	// Interval after this run started, a one-shot one is removed.
	ActivityDone
)

var activityStateWords = [...]string{
	ActivityCheckIn: bootstrap.ActivityCheckIn, ActivityWait: bootstrap.ActivityWait, ActivityRun: bootstrap.ActivityRun,
	ActivityDefer: bootstrap.ActivityDefer, ActivityContinue: bootstrap.ActivityContinue, ActivityDone: bootstrap.ActivityDone,
}

// String returns the state's word: "check-in", "wait", "run", "defer",
// "continue", "done".
func (s ActivityState) String() string {
	if s >= 0 && int(s) < len(activityStateWords) {
		return activityStateWords[s]
	}
	return fmt.Sprintf("ActivityState(%d)", int(s))
}

// ActivityError is xpcd's refusal of an activity request: Reason says
// why; for a limit, Reason.Rule is bootstrap's activity-limit
// (docs/SECURITY.md). errors.Is matches the reason's kind (ErrDenied), or,
// for an activity that does not exist, ErrActivityNotFound.
type ActivityError struct {
	ID     string
	Reason *Reason
}

func (e *ActivityError) Error() string {
	return fmt.Sprintf("xpc: activity %q: %s", e.ID, e.Reason.String())
}

// Is matches the reason's kind, and ErrActivityNotFound.
func (e *ActivityError) Is(target error) bool {
	if e.Reason.Code == ReasonNotFound {
		return target == ErrActivityNotFound
	}
	k := e.Reason.Kind()
	return k != nil && k == target
}

// Activity is one run (or the check-in) of an activity, as its handler
// gets it. The rules are xpc_activity's:
//
//   - The handler is called with State ActivityRun when xpcd runs the
//     activity: when it is due and its criteria hold, launching the
//     service first if it does not run. An activity registered without
//     criteria gets a first call with ActivityCheckIn.
//   - If the handler returns with the state still ActivityRun, the run is
//     done (ActivityDone).
//   - SetState(ActivityContinue) in the handler keeps the run going after
//     the handler returns; a later SetState(ActivityDone) or
//     SetState(ActivityDefer), from any goroutine, ends it.
//   - ShouldDefer turns true while the run's criteria no longer hold: the
//     handler should stop and SetState(ActivityDefer).
//   - Other transitions fail with ErrActivityState.
//
// While a run goes on, it holds one of the service's transactions, so
// that xpcd's idle exit waits for it.
type Activity struct {
	s           *Service
	id          string
	crit        ActivityCriteria
	shouldDefer atomic.Bool

	mu    sync.Mutex
	state ActivityState
	endTx func() // the run's transaction; nil when not running
}

// Identifier returns the activity's identifier.
func (a *Activity) Identifier() string { return a.id }

// Criteria returns the criteria in force, as xpcd says.
func (a *Activity) Criteria() ActivityCriteria { return a.crit }

// State returns the activity's state.
func (a *Activity) State() ActivityState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// ShouldDefer reports whether xpcd has said the running activity's
// criteria no longer hold.
func (a *Activity) ShouldDefer() bool { return a.shouldDefer.Load() }

// SetState moves a running activity to ActivityContinue, ActivityDone or
// ActivityDefer, and tells xpcd. Anything else fails with
// ErrActivityState.
func (a *Activity) SetState(ctx context.Context, st ActivityState) error {
	a.mu.Lock()
	from := a.state
	running := from == ActivityRun || from == ActivityContinue
	if !running || (st != ActivityContinue && st != ActivityDone && st != ActivityDefer) {
		a.mu.Unlock()
		return fmt.Errorf("xpc: %w: activity %q from %s to %s", ErrActivityState, a.id, from, st)
	}
	a.state = st
	end := a.endTx
	if st != ActivityContinue {
		a.endTx = nil
	}
	a.mu.Unlock()
	if st == ActivityContinue && from == ActivityContinue {
		return nil
	}
	err := a.s.sendActivity(ctx, a.id, Dict(bootstrap.KeyOp, bootstrap.OpActivityState,
		bootstrap.KeyActivityID, a.id, bootstrap.KeyActivityState, st.String()))
	if st != ActivityContinue && end != nil {
		end()
	}
	return err
}

// activityReg is one registration in the service: its handler's calls
// run one at a time, in order, on the registration's goroutine.
type activityReg struct {
	id      string
	crit    *ActivityCriteria // as registered; nil: checked in
	handler func(*Activity)
	calls   chan *Activity
	ready   chan struct{} // closed once xpcd has answered the registration
	quit    chan struct{}
	inForce ActivityCriteria
	current atomic.Pointer[Activity]
}

// activityTable is a service's registrations, by identifier.
type activityTable struct {
	mu   sync.Mutex
	regs map[string]*activityReg
}

// activityCalls is how many handler calls may wait for a registration's
// goroutine; xpcd sends the next run only after the last has ended.
const activityCalls = 4

// RegisterActivity registers the activity id of the service's job with
// xpcd, which runs it when it is due and criteria hold (ActivityCriteria),
// calling handler (see Activity for the rules); the registration, and its
// schedule, outlive the process: xpcd launches the service again to run
// it. With criteria nil it checks in for the activity the job's plist
// declares (LaunchEvents → com.apple.xpc.activity), or one registered
// before, and the handler is first called with ActivityCheckIn; it fails
// with ErrActivityNotFound when there is none. Criteria that cannot be
// honoured fail with ErrBadCriteria; a refusal by xpcd (a limit) is an
// *ActivityError. The handler's calls for one activity come one at a
// time, on a goroutine of the registration's; Service.Close waits for a
// call under way to return.
func (s *Service) RegisterActivity(ctx context.Context, id string, criteria *ActivityCriteria, handler func(*Activity)) error {
	if id == "" || handler == nil {
		return fmt.Errorf("xpc: RegisterActivity(%q): want an identifier and a handler", id)
	}
	if criteria != nil {
		if err := criteria.Check(); err != nil {
			return err
		}
	}
	if s.ctx == nil || s.ctx.Err() != nil {
		return fmt.Errorf("xpc: RegisterActivity(%q): the service is closed", id)
	}
	r := &activityReg{id: id, crit: criteria, handler: handler, calls: make(chan *Activity, activityCalls),
		ready: make(chan struct{}), quit: make(chan struct{})}
	s.acts.mu.Lock()
	if s.acts.regs == nil {
		s.acts.regs = map[string]*activityReg{}
	}
	if _, dup := s.acts.regs[id]; dup {
		s.acts.mu.Unlock()
		return fmt.Errorf("xpc: RegisterActivity(%q): already registered", id)
	}
	s.acts.regs[id] = r
	s.acts.mu.Unlock()
	s.wg.Add(1)
	go s.runActivity(r)
	reply, err := s.registerWith(ctx, s.control(), r)
	if err != nil {
		s.dropActivity(r)
		return err
	}
	r.inForce, _, _ = ParseActivityCriteria(dictOrNil(reply.Get(bootstrap.KeyCriteria)))
	close(r.ready)
	return nil
}

// UnregisterActivity removes the activity id: xpcd forgets it (a declared
// one comes back when the job's plist is loaded again).
func (s *Service) UnregisterActivity(ctx context.Context, id string) error {
	s.acts.mu.Lock()
	r := s.acts.regs[id]
	s.acts.mu.Unlock()
	if r != nil {
		s.dropActivity(r)
	}
	return s.sendActivity(ctx, id, Dict(bootstrap.KeyOp, bootstrap.OpActivityUnregister, bootstrap.KeyActivityID, id))
}

// control returns the current check-in channel, nil while there is none.
func (s *Service) control() *Connection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctl
}

// registerWith sends r's registration on ctl.
func (s *Service) registerWith(ctx context.Context, ctl *Connection, r *activityReg) (*Dictionary, error) {
	if ctl == nil {
		return nil, interruptedError(nil, "no check-in channel to xpcd")
	}
	req := Dict(bootstrap.KeyOp, bootstrap.OpActivityRegister, bootstrap.KeyActivityID, r.id)
	if r.crit != nil {
		req.Set(bootstrap.KeyCriteria, r.crit.Dictionary())
	}
	reply, err := ctl.SendWithReply(ctx, req)
	return reply, activityError(r.id, err)
}

// sendActivity sends an activity request on the check-in channel.
func (s *Service) sendActivity(ctx context.Context, id string, req *Dictionary) error {
	ctl := s.control()
	if ctl == nil {
		return interruptedError(nil, "no check-in channel to xpcd")
	}
	_, err := ctl.SendWithReply(ctx, req)
	return activityError(id, err)
}

// activityError maps xpcd's refusal of an activity request.
func activityError(id string, err error) error {
	var re *RemoteError
	if !errors.As(err, &re) {
		if err != nil {
			return wrapf(err, "activity %q", id)
		}
		return nil
	}
	r := ReasonFromObject(re.Object)
	if r.Code == bootstrap.ReasonBadCriteria {
		return fmt.Errorf("xpc: %w: activity %q: %s", ErrBadCriteria, id, r.Description)
	}
	return &ActivityError{ID: id, Reason: r}
}

func dictOrNil(o Object) *Dictionary {
	d, _ := o.(*Dictionary)
	return d
}

// dropActivity forgets r and stops its goroutine.
func (s *Service) dropActivity(r *activityReg) {
	s.acts.mu.Lock()
	if s.acts.regs[r.id] == r {
		delete(s.acts.regs, r.id)
		close(r.quit)
	}
	s.acts.mu.Unlock()
}

// runActivity calls r's handler: with ActivityCheckIn once registered
// without criteria, then for each run xpcd delivers.
func (s *Service) runActivity(r *activityReg) {
	defer s.wg.Done()
	select {
	case <-r.ready:
	case <-r.quit:
		return
	case <-s.ctx.Done():
		return
	}
	if r.crit == nil {
		r.handler(&Activity{s: s, id: r.id, crit: r.inForce, state: ActivityCheckIn})
	}
	for {
		select {
		case a := <-r.calls:
			s.callRun(r, a)
		case <-r.quit:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// callRun calls the handler for a run; a run still in ActivityRun when it
// returns is done.
func (s *Service) callRun(r *activityReg, a *Activity) {
	r.handler(a)
	a.mu.Lock()
	done := a.state == ActivityRun
	a.mu.Unlock()
	if done {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		_ = a.SetState(ctx, ActivityDone)
		cancel()
	}
}

// activityMessage handles OpActivity and OpActivityShouldDefer from xpcd.
func (s *Service) activityMessage(op string, body *Dictionary) {
	id, _ := body.String(bootstrap.KeyActivityID)
	s.acts.mu.Lock()
	r := s.acts.regs[id]
	s.acts.mu.Unlock()
	if op == bootstrap.OpActivityShouldDefer {
		if r != nil {
			if a := r.current.Load(); a != nil {
				v, _ := body.Bool(bootstrap.KeyShouldDefer)
				a.shouldDefer.Store(v)
			}
		}
		return
	}
	crit, _, _ := ParseActivityCriteria(dictOrNil(body.Get(bootstrap.KeyCriteria)))
	a := &Activity{s: s, id: id, crit: crit, state: ActivityRun, endTx: s.tx.Begin()}
	if r == nil {
		if s.ctx.Err() != nil {
			return // closing: xpcd finds the channel gone
		}
		// Not registered here (any more): xpcd runs it later.
		a.state = ActivityDefer
		a.endTx()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.sendActivity(s.ctx, id, Dict(bootstrap.KeyOp, bootstrap.OpActivityState,
				bootstrap.KeyActivityID, id, bootstrap.KeyActivityState, bootstrap.ActivityDefer))
		}()
		return
	}
	r.current.Store(a)
	select {
	case r.calls <- a:
	default:
		a.endTx() // xpcd sends one run at a time; never here
	}
}

// reregisterActivities registers the service's activities again on a new
// check-in channel, after xpcd restarted and adopted the service.
func (s *Service) reregisterActivities(ctx context.Context, ctl *Connection) {
	s.acts.mu.Lock()
	regs := make([]*activityReg, 0, len(s.acts.regs))
	for _, r := range s.acts.regs {
		regs = append(regs, r)
	}
	s.acts.mu.Unlock()
	for _, r := range regs {
		_, _ = s.registerWith(ctx, ctl, r)
	}
}
