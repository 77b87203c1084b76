package xpc

import "sync"

// Transactions counts open transactions: incoming messages that wait for
// their reply, and work begun explicitly with Begin. A service with no open
// transaction is clean and may be stopped when idle; xpcd's idle exit reads
// this count. The zero value is ready to use.
type Transactions struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
	// busy, once made by armBusy, gets a token when the count next
	// leaves zero: the service runtime's reporter waits on it.
	busy      chan struct{}
	busyArmed bool
}

// Begin opens a transaction and returns the function that ends it; calling
// that function more than once ends it only once.
func (t *Transactions) Begin() (end func()) {
	t.add(1)
	var once sync.Once
	return func() { once.Do(func() { t.add(-1) }) }
}

// Count returns the number of open transactions.
func (t *Transactions) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Changed returns a channel that is closed at the next change of the count.
func (t *Transactions) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.changed == nil {
		t.changed = make(chan struct{})
	}
	return t.changed
}

func (t *Transactions) add(d int) {
	t.mu.Lock()
	was := t.n
	t.n += d
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
	if was == 0 && t.n != 0 && t.busyArmed {
		t.busyArmed = false
		select {
		case t.busy <- struct{}{}:
		default:
		}
	}
	t.mu.Unlock()
}

// armBusy returns a channel that receives a token when the count next
// leaves zero, and the count now. Changes after that signal nothing until
// it is called again.
func (t *Transactions) armBusy() (<-chan struct{}, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy == nil {
		t.busy = make(chan struct{}, 1)
	}
	t.busyArmed = true
	return t.busy, t.n
}
