package xpc

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Mirroring (docs/design/monitor.md): xpcd is not on the message path, so
// a service's own runtime copies the messages of its listeners'
// connections to the monitors xpcd attached (xpcctl monitor), while one
// is attached. A monitor is the service's end of a SOCK_SEQPACKET socket
// whose far end xpcctl reads; each message becomes one record, an encoded
// dictionary of bootstrap.KeyMon* keys, written without waiting: a record
// that does not fit the socket is dropped and counted, and the count
// travels in the next record that goes through. A monitor whose far end
// hangs up is detached, its descriptor closed and its goroutine ended.
//
// With no monitor attached the cost to a message is one atomic load (the
// hooks sent and received); a connection that is not a service
// listener's has no mirror, and pays a nil check.

// maxMirrorSinks bounds the monitors one service mirrors to (xpcd allows
// fewer per job); more are closed at once.
const maxMirrorSinks = 8

// mirror is a Service's set of attached monitors. Its zero value has none.
// sinks is replaced whole (copy on write) under mu, so the message path
// reads it with one atomic load and no lock.
type mirror struct {
	sinks atomic.Pointer[[]*mirrorSink] // nil when none is attached

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // the sinks' hang-up watchers
}

// mirrorSink is one attached monitor.
type mirrorSink struct {
	m       *mirror
	f       *os.File // non-blocking, in the runtime's poller
	rc      syscall.RawConn
	dropped atomic.Uint64 // records dropped since the last one written
	once    sync.Once
}

// sent mirrors a frame l sent: kind k, id id, the encoded body and the
// count of descriptors it carried.
func (m *mirror) sent(l *link, k wire.Kind, id uint64, body []byte, nfds int) {
	if m != nil && m.sinks.Load() != nil {
		m.recordSent(l, k, id, body, nfds)
	}
}

// recordSent is kept out of sent, so that sent is inlined.
//
//go:noinline
func (m *mirror) recordSent(l *link, k wire.Kind, id uint64, body []byte, nfds int) {
	m.record(l, bootstrap.MonOut, wire.Header{Kind: k, ID: id}, body, nfds)
}

// received mirrors a frame l read, whose header is h.
func (m *mirror) received(l *link, h wire.Header, body []byte, nfds int) {
	if m != nil && m.sinks.Load() != nil {
		m.record(l, bootstrap.MonIn, h, body, nfds)
	}
}

func (m *mirror) record(l *link, dir string, h wire.Header, body []byte, nfds int) {
	sinks := m.sinks.Load()
	if sinks == nil {
		return
	}
	f := mirrorFrame{at: DateOf(time.Now()), dir: dir, h: h, size: len(body), nfds: nfds, body: body}
	conn := -1
	_ = l.s.Control(func(fd int) { conn = fd })
	f.conn = conn
	if p := l.peer.Load(); p != nil {
		f.peer, f.pid, f.uid = true, p.PID, p.UID
	}
	w := framePool.Get().(*writer)
	for _, s := range *sinks {
		s.write(w, &f)
	}
	w.reset(w.b[:0], Limits{})
	if cap(w.b) > wire.InlineMax {
		w.b = nil
	}
	framePool.Put(w)
}

// mirrorFrame is what the record of one frame says.
type mirrorFrame struct {
	at         Date
	dir        string
	h          wire.Header
	conn       int // the link's descriptor: unique among the open ones
	peer       bool
	pid        int
	uid        uint32
	size, nfds int
	body       []byte
}

// encode writes the record into w, an encoded dictionary of
// bootstrap.KeyMon* keys, field by field (no value is boxed), and returns
// it. dropped is the count of records dropped before it.
func (f *mirrorFrame) encode(w *writer, dropped uint64) []byte {
	w.reset(w.b[:0], Limits{})
	w.u32(MagicLocal)
	w.u32(Version)
	pos, _ := w.open(TypeDictionary)
	n := 0
	num := func(k string, t Type, v uint64) { w.cstr(k); w.u32(uint32(t)); w.u64(v); n++ }
	str := func(k, v string) { w.cstr(k); _ = w.str(v); n++ }
	yes := func(k string) { w.cstr(k); w.u32(uint32(TypeBool)); w.u32(1); n++ }
	num(bootstrap.KeyMonTime, TypeDate, uint64(f.at))
	str(bootstrap.KeyMonDir, f.dir)
	switch f.h.Kind {
	case wire.KindRequest:
		str(bootstrap.KeyMonKind, bootstrap.MonRequest)
		num(bootstrap.KeyMonID, TypeUint64, f.h.ID)
	case wire.KindReply:
		str(bootstrap.KeyMonKind, bootstrap.MonReply)
		num(bootstrap.KeyMonReplyTo, TypeUint64, f.h.ID)
		if f.h.Flags&wire.FlagNoReply != 0 {
			yes(bootstrap.KeyMonNoReply)
		}
	default:
		str(bootstrap.KeyMonKind, bootstrap.MonMessage)
	}
	num(bootstrap.KeyMonConn, TypeInt64, uint64(int64(f.conn)))
	if f.peer {
		num(bootstrap.KeyMonPID, TypeInt64, uint64(int64(f.pid)))
		num(bootstrap.KeyMonUID, TypeInt64, uint64(f.uid))
	}
	num(bootstrap.KeyMonSize, TypeInt64, uint64(f.size))
	num(bootstrap.KeyMonFDs, TypeInt64, uint64(f.nfds))
	body := f.body
	if len(body) > bootstrap.MonitorBodyMax {
		body = body[:bootstrap.MonitorBodyMax]
		yes(bootstrap.KeyMonTruncated)
	}
	w.cstr(bootstrap.KeyMonBody)
	_ = w.data(body)
	n++
	if dropped > 0 {
		num(bootstrap.KeyMonDropped, TypeUint64, dropped)
	}
	_ = w.close(pos, n)
	return w.b
}

// write sends f's record to the monitor if its socket takes it at once;
// otherwise it counts a drop. A monitor whose far end has gone is
// detached. w is the writer to encode it with.
func (s *mirrorSink) write(w *writer, f *mirrorFrame) {
	n := s.dropped.Swap(0)
	b := f.encode(w, n)
	var serr error
	cerr := s.rc.Write(func(fd uintptr) bool {
		// Never waits; a monitor gone is EPIPE, not SIGPIPE.
		serr = unix.Sendto(int(fd), b, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, nil)
		return true
	})
	switch {
	case cerr != nil: // closed: detached meanwhile
	case serr == nil:
	case errors.Is(serr, unix.EAGAIN), errors.Is(serr, unix.ENOBUFS), errors.Is(serr, unix.EMSGSIZE):
		s.dropped.Add(n + 1)
	default: // EPIPE, ECONNRESET: the monitor has gone
		s.detach()
	}
}

// attach adds the monitor whose socket is o, an *FD (which stays the
// caller's), unless it is not a SOCK_SEQPACKET socket, the mirror is
// closed, or it has maxMirrorSinks already.
func (m *mirror) attach(o Object) {
	end, _ := o.(*FD)
	if end == nil {
		return
	}
	fd, err := dupFile(end.File())
	if err != nil {
		return
	}
	if sock.CheckSeqpacket(fd) != nil || unix.SetNonblock(fd, true) != nil {
		closeRaw(fd)
		return
	}
	f := os.NewFile(uintptr(fd), "xpc-monitor")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	s := &mirrorSink{m: m, f: f, rc: rc}
	m.mu.Lock()
	var cur []*mirrorSink
	if p := m.sinks.Load(); p != nil {
		cur = *p
	}
	if m.closed || len(cur) >= maxMirrorSinks {
		m.mu.Unlock()
		f.Close()
		return
	}
	next := append(append(make([]*mirrorSink, 0, len(cur)+1), cur...), s)
	m.sinks.Store(&next)
	m.wg.Add(1)
	m.mu.Unlock()
	go s.watch()
}

// watch detaches the monitor once its far end hangs up. xpcctl sends
// nothing, so a read returns only then (or when detach closes f).
func (s *mirrorSink) watch() {
	defer s.m.wg.Done()
	var b [64]byte
	for {
		if _, err := s.f.Read(b[:]); err != nil {
			break
		}
	}
	s.detach()
}

// detach removes the monitor and closes its socket. It is idempotent.
func (s *mirrorSink) detach() {
	s.once.Do(func() {
		s.m.remove(s)
		s.f.Close()
	})
}

func (m *mirror) remove(s *mirrorSink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.sinks.Load()
	if p == nil {
		return
	}
	next := make([]*mirrorSink, 0, len(*p))
	for _, o := range *p {
		if o != s {
			next = append(next, o)
		}
	}
	if len(next) == 0 {
		m.sinks.Store(nil)
		return
	}
	m.sinks.Store(&next)
}

// close detaches every monitor, takes no more, and waits for the
// watchers to end.
func (m *mirror) close() {
	m.mu.Lock()
	m.closed = true
	var sinks []*mirrorSink
	if p := m.sinks.Load(); p != nil {
		sinks = *p
	}
	m.mu.Unlock()
	for _, s := range sinks {
		s.detach()
	}
	m.wg.Wait()
}

// attached returns how many monitors are attached (tests).
func (m *mirror) attached() int {
	if p := m.sinks.Load(); p != nil {
		return len(*p)
	}
	return 0
}
