package xpc

import (
	"context"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// What a Service reports to xpcd on its check-in channel, unasked: its
// open transaction count, which idle exit, pressured exit and upgrades
// read, and its listeners' open peer connections, which print shows.

// txSettle is how often the transaction count is reported to xpcd at most
// while it is not zero, and how long after it has fallen to zero the zero
// is reported.
const txSettle = 100 * time.Millisecond

// txChurnGap is the least time between two looks woken by the count
// leaving zero when the first found it back at zero: transactions that
// open and close faster than the reporter looks would otherwise wake it
// once each. A count that stays above zero is reported at most this late.
const txChurnGap = time.Millisecond

// reportTransactions tells xpcd the transaction count, and the open peer
// connections of the service's listeners. xpcd must never believe a busy
// service clean, so a count that leaves zero is reported at once; the
// rest can wait: other changes are reported at most once per txSettle, so
// a service answering a stream of requests (each one a transaction that
// opens and closes), or accepting a stream of clients, sends no report
// per request or client, and its reporter sleeps between looks instead of
// waking at each change. xpcd then sees the service clean up to txSettle
// late, which delays an idle exit (seconds long) by as much.
func (s *Service) reportTransactions() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var sent time.Time
	// churned: when a look woken by the count leaving zero found it at
	// zero again (see txChurnGap).
	var churned time.Time
	wokeBusy := false
	for {
		s.txLooks.Add(1)
		s.mu.Lock()
		ctl, last, lastPeers := s.ctl, s.reported, s.reportedPeers
		s.mu.Unlock()
		// Only a count that leaves a reported zero needs waking for.
		var busy <-chan struct{}
		var n int
		if last == 0 {
			busy, n = s.tx.armBusy()
		} else {
			n = s.tx.Count()
		}
		if wokeBusy && last == 0 && n == 0 {
			churned = time.Now()
		}
		wokeBusy = false
		peers := s.lookAtPeers(lastPeers)
		if ctl != nil && reportDue(n, last, peers, lastPeers, time.Since(sent)) {
			// From now on a change of the peers wakes the reporter.
			s.peersDirty.Store(false)
			err := s.reportCount(ctl, n, s.openPeers())
			sent = time.Now()
			if err == nil {
				continue
			}
		}
		// Look again when the count leaves zero, when a new channel
		// comes or the peers change, and, while anything but zero was
		// reported or a change waits, after txSettle.
		var tick <-chan time.Time
		switch {
		case ctl != nil && (n != last || peers != lastPeers):
			// A change waits for its turn.
			timer.Reset(max(txSettle-time.Since(sent), time.Millisecond))
			tick = timer.C
		case ctl != nil && last != 0:
			// Busy, and reported: look again later.
			timer.Reset(txSettle)
			tick = timer.C
		}
		select {
		case <-busy:
			wokeBusy = true
		case <-tick:
		case <-s.txKick:
		case <-s.ctx.Done():
			timer.Stop()
			return
		}
		timer.Stop()
		if d := txChurnGap - time.Since(churned); wokeBusy && d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-s.ctx.Done():
				timer.Stop()
				return
			}
		}
	}
}

// reportDue says whether the transaction count n and the peer count peers
// are to be reported now, last and lastPeers having been (-1: nothing yet
// on this channel), since ago: on a new channel and when the count leaves
// zero, at once; any other change once txSettle has passed.
func reportDue(n, last, peers, lastPeers int, since time.Duration) bool {
	if (n != last && (last < 0 || (last == 0 && n > 0))) || (peers != lastPeers && lastPeers < 0) {
		return true
	}
	return (n != last || peers != lastPeers) && since >= txSettle
}

// peersChanged is told by a listener that it gained or lost a peer. It
// wakes the reporter, unless a change is already waiting for it: the
// reporter looks at the count when it is due.
func (s *Service) peersChanged() {
	if !s.peersDirty.Swap(true) {
		s.kickReporter()
	}
}

// lookAtPeers returns the open peer count for the reporter, which last
// reported lastPeers. A count back at what was reported lets changes wake
// the reporter again.
func (s *Service) lookAtPeers(lastPeers int) int {
	peers := s.openPeers()
	if peers == lastPeers && s.peersDirty.Swap(false) {
		peers = s.openPeers() // changed since the look above
	}
	return peers
}

// openPeers returns how many peer connections the service's listeners
// have open.
func (s *Service) openPeers() int {
	n := 0
	for _, l := range s.currentListeners() {
		n += l.peerCount()
	}
	return n
}

// reportCount sends the transaction count n and the open peer count peers
// to xpcd on ctl, and records them as reported if ctl is still the check-in
// channel.
func (s *Service) reportCount(ctl *Connection, n, peers int) error {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	err := ctl.Send(ctx, Dict(bootstrap.KeyOp, bootstrap.OpTransactions, bootstrap.KeyCount, n, bootstrap.KeyConnections, peers))
	cancel()
	if err == nil {
		s.mu.Lock()
		if s.ctl == ctl {
			s.reported, s.reportedPeers = n, peers
		}
		s.mu.Unlock()
	}
	return err
}
