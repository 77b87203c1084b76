package xpc

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// Hostile peers: the test drives the raw far end of a socket pair by hand,
// while the near end is a peer Connection made as a listener makes one.
// Whatever arrives, the connection must end with a typed protocol error,
// close every descriptor it received, and leave the process running.

// hostilePeer makes a peer connection over one end of a socket pair and
// returns it, its handler and the raw other end (closed when the test ends).
func hostilePeer(t *testing.T, msg func(ctx context.Context, m *Message), opts ...Option) (*Connection, *testHandler, int) {
	t.Helper()
	a, b, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(b) })
	cfg, err := newConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newPeerConnection(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(msg)
	c.SetHandler(h)
	c.Activate()
	t.Cleanup(func() {
		c.Cancel()
		waitClosed(t, c.Done(), "hostile-peer connection")
	})
	return c, h, b
}

// rawFrame builds a frame by hand.
func rawFrame(version byte, k wire.Kind, flags uint16, nfds uint32, id uint64, body []byte) []byte {
	b := make([]byte, wire.HeaderSize, wire.HeaderSize+len(body))
	b[0] = version
	b[1] = byte(k)
	binary.LittleEndian.PutUint16(b[2:], flags)
	binary.LittleEndian.PutUint32(b[4:], nfds)
	binary.LittleEndian.PutUint64(b[8:], id)
	return append(b, body...)
}

func frameOf(k wire.Kind, flags uint16, nfds uint32, id uint64, body []byte) []byte {
	return rawFrame(wire.Version, k, flags, nfds, id, body)
}

// rawSend sends one datagram with descriptors attached (the caller keeps
// them), waiting while the socket buffer is full. Once the connection has
// given up and closed its end it fails, which most callers ignore.
func rawSend(t *testing.T, fd int, b []byte, fds ...int) error {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		err := unix.Sendmsg(fd, b, oob, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err != unix.EAGAIN || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// mustBody encodes a valid body.
func mustBody(t *testing.T, obj Object) []byte {
	t.Helper()
	b, err := Encode(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pipeFDs returns the two ends of a pipe, closed when the test ends.
func pipeFDs(t *testing.T) (int, int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

// memfdWith returns a memfd holding b, sealed if asked, closed when the test
// ends.
func memfdWith(t *testing.T, b []byte, seal bool) int {
	t.Helper()
	fd, err := unix.MemfdCreate("hostile", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.Pwrite(fd, b, 0); err != nil {
		t.Fatal(err)
	}
	if seal {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

func TestConnHostilePeer(t *testing.T) {
	type env struct {
		c   *Connection
		raw int
	}
	cases := []struct {
		name  string
		block bool // the connection is suspended while the peer sends
		send  func(t *testing.T, e env)
	}{
		{"garbage", false, func(t *testing.T, e env) {
			b := make([]byte, 100)
			for i := range b {
				b[i] = 0xa5
			}
			rawSend(t, e.raw, b)
		}},
		{"empty datagram", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, nil)
		}},
		{"shorter than a header", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, []byte{wire.Version, byte(wire.KindMessage), 0, 0, 0})
		}},
		{"shorter than a header with descriptors", false, func(t *testing.T, e env) {
			r, w := pipeFDs(t)
			rawSend(t, e.raw, []byte{wire.Version}, r, w)
		}},
		{"bad version", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, rawFrame(2, wire.KindMessage, 0, 0, 0, mustBody(t, Dict())))
		}},
		{"unknown kind", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(12, 0, 0, 0, mustBody(t, Dict())))
		}},
		{"kind zero", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(0, 0, 0, 0, nil))
		}},
		{"connect on a connection", false, func(t *testing.T, e env) {
			r, _ := pipeFDs(t)
			rawSend(t, e.raw, frameOf(wire.KindConnect, 0, 1, 0, nil), r)
		}},
		{"unknown flags", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindMessage, 0x80, 0, 0, mustBody(t, Dict())))
		}},
		{"no-reply flag on a request", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindRequest, wire.FlagNoReply, 0, 1, mustBody(t, Dict())))
		}},
		{"nfds 3, none sent", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindMessage, 0, 3, 0, mustBody(t, Dict())))
		}},
		{"nfds 0, two sent", false, func(t *testing.T, e env) {
			r, w := pipeFDs(t)
			rawSend(t, e.raw, frameOf(wire.KindMessage, 0, 0, 0, mustBody(t, Dict())), r, w)
		}},
		{"nfds matches, body uses fewer", false, func(t *testing.T, e env) {
			r, w := pipeFDs(t)
			rawSend(t, e.raw, frameOf(wire.KindMessage, 0, 2, 0, mustBody(t, Dict())), r, w)
		}},
		{"253 descriptors", false, func(t *testing.T, e env) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			r := int(pr.Fd())
			fds := make([]int, wire.MaxFDs)
			arr := make(Array, wire.MaxFDs)
			for i := range fds {
				fds[i] = r
				arr[i] = NewFD(pr) // for the body's tags only
			}
			w := writer{}
			w.reset(nil, Limits{})
			if err := w.body(MagicLocal, Dict("fds", arr)); err != nil {
				t.Fatal(err)
			}
			if err := rawSend(t, e.raw, frameOf(wire.KindMessage, 0, wire.MaxFDs, 0, w.b), fds...); err != nil {
				t.Fatal(err)
			}
		}},
		{"bad body", false, func(t *testing.T, e env) {
			body := append(mustBody(t, Dict("k", String("v"))), 0xff, 0xff)
			copy(body[8:], []byte{0xee, 0xee, 0xee, 0xee})
			rawSend(t, e.raw, frameOf(wire.KindMessage, 0, 0, 0, body))
		}},
		{"bad body with descriptors", false, func(t *testing.T, e env) {
			r, w := pipeFDs(t)
			rawSend(t, e.raw, frameOf(wire.KindRequest, 0, 2, 1, []byte("@XPC garbage garbage")), r, w)
		}},
		{"message not a dictionary", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindMessage, 0, 0, 0, mustBody(t, Int64(5))))
		}},
		{"reply for an unknown id", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindReply, 0, 0, 42, mustBody(t, Dict())))
		}},
		{"no-reply for an unknown id", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindReply, wire.FlagNoReply, 0, 42, nil))
		}},
		{"no-reply with a body", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindReply, wire.FlagNoReply, 0, 1, mustBody(t, Dict())))
		}},
		{"reply twice", false, func(t *testing.T, e env) {
			call := e.c.Go(context.Background(), Dict())
			id := readFrameID(t, e.raw)
			rawSend(t, e.raw, frameOf(wire.KindReply, 0, 0, id, mustBody(t, Dict())))
			if _, err := call.Wait(testCtx(t)); err != nil {
				t.Fatalf("first reply: %v", err)
			}
			rawSend(t, e.raw, frameOf(wire.KindReply, 0, 0, id, mustBody(t, Dict())))
		}},
		{"reply not a dictionary", false, func(t *testing.T, e env) {
			call := e.c.Go(context.Background(), Dict())
			id := readFrameID(t, e.raw)
			rawSend(t, e.raw, frameOf(wire.KindReply, 0, 0, id, mustBody(t, String("no"))))
			_, err := call.Wait(testCtx(t))
			wantConnErr(t, err, ErrInvalid, ErrProtocol)
		}},
		{"credit overflow", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindCredit, 0, 0, 1, nil))
		}},
		{"credit zero", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindCredit, 0, 0, 0, nil))
		}},
		{"credit beyond the window", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindCredit, 0, 0, 1<<40, nil))
		}},
		{"credit with descriptors", false, func(t *testing.T, e env) {
			r, _ := pipeFDs(t)
			rawSend(t, e.raw, frameOf(wire.KindCredit, 0, 1, 1, nil), r)
		}},
		{"credit for bytes never sent", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, creditFrame(0, 100))
		}},
		{"ack for replies never sent", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindAck, 0, 0, 100, nil))
		}},
		{"ack of zero bytes", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindAck, 0, 0, 0, nil))
		}},
		{"window below the minimum", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindWindow, 0, 0, wire.InitialWindow-1, nil))
		}},
		{"window twice", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindWindow, 0, 0, 2*wire.InitialWindow, nil))
			rawSend(t, e.raw, frameOf(wire.KindWindow, 0, 0, 2*wire.InitialWindow, nil))
		}},
		{"stalled with a body", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindStalled, 0, 0, 0, []byte("wait")))
		}},
		{"terminating with a body", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindTerminating, 0, 0, 0, []byte("bye")))
		}},
		{"more messages than the window", true, func(t *testing.T, e env) {
			f := frameOf(wire.KindMessage, 0, 0, 0, mustBody(t, Dict()))
			for range wire.CreditWindow + 10 {
				if err := rawSend(t, e.raw, f); err != nil {
					break
				}
			}
		}},
		{"out-of-line without its memfd", false, func(t *testing.T, e env) {
			rawSend(t, e.raw, frameOf(wire.KindMessage, wire.FlagOutOfLine, 0, 0, nil))
		}},
		{"out-of-line with an inline body too", false, func(t *testing.T, e env) {
			fd := memfdWith(t, mustBody(t, Dict()), true)
			rawSend(t, e.raw, frameOf(wire.KindMessage, wire.FlagOutOfLine, 1, 0, mustBody(t, Dict())), fd)
		}},
		{"out-of-line in a pipe", false, func(t *testing.T, e env) {
			r, w := pipeFDs(t)
			unix.Write(w, mustBody(t, Dict()))
			rawSend(t, e.raw, frameOf(wire.KindMessage, wire.FlagOutOfLine, 1, 0, nil), r)
		}},
		{"out-of-line unsealed", false, func(t *testing.T, e env) {
			fd := memfdWith(t, mustBody(t, Dict()), false)
			rawSend(t, e.raw, frameOf(wire.KindMessage, wire.FlagOutOfLine, 1, 0, nil), fd)
		}},
		{"out-of-line garbage", false, func(t *testing.T, e env) {
			fd := memfdWith(t, make([]byte, 1<<20), true)
			r, _ := pipeFDs(t)
			rawSend(t, e.raw, frameOf(wire.KindMessage, wire.FlagOutOfLine, 2, 0, nil), fd, r)
		}},
		{"out-of-line over the limit", false, func(t *testing.T, e env) {
			big := mustBody(t, Dict("b", Data(make([]byte, 2<<20))))
			fd := memfdWith(t, big, true)
			rawSend(t, e.raw, frameOf(wire.KindMessage, wire.FlagOutOfLine, 1, 0, nil), fd)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			c, h, raw := hostilePeer(t, func(ctx context.Context, m *Message) {}, WithMaxMessageSize(1<<20))
			if tc.block {
				// Nothing is delivered while suspended, so what comes
				// is read and queued, counted against the window.
				c.Suspend()
			}
			tc.send(t, env{c, raw})
			deadline := time.Now().Add(testTimeout)
			for c.Err() == nil {
				if time.Now().After(deadline) {
					t.Fatal("the connection accepted it")
				}
				time.Sleep(time.Millisecond)
			}
			if tc.block {
				c.Resume()
			}
			h.finalEvent(t, ErrInvalid, ErrProtocol)
			waitClosed(t, c.Done(), "connection")
			wantConnErr(t, c.Err(), ErrInvalid, ErrProtocol)
			// The raw end sees the connection close.
			if !drainToEOF(raw) {
				t.Error("the connection's socket is still open")
			}
		})
	}
}

// creditFrame grants msgs messages and bytes body bytes.
func creditFrame(msgs, bytes int) []byte {
	return frameOf(wire.KindCredit, 0, 0, uint64(msgs)|uint64(bytes)<<wire.CreditBytesShift, nil)
}

// readFrameID reads one frame from the raw end and returns its id.
func readFrameID(t *testing.T, fd int) uint64 {
	t.Helper()
	b := make([]byte, wire.InlineMax)
	oob := make([]byte, unix.CmsgSpace(wire.MaxFDs*4))
	n, _, _, _, err := unix.Recvmsg(fd, b, oob, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wire.ParseHeader(b[:n])
	if err != nil {
		t.Fatal(err)
	}
	return h.ID
}

// drainToEOF reads the raw end until the other end's close shows, closing
// any descriptors that come; false if it does not come within testTimeout.
func drainToEOF(fd int) bool {
	b := make([]byte, wire.InlineMax)
	oob := make([]byte, unix.CmsgSpace(wire.MaxFDs*4))
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		n, oobn, _, _, err := unix.Recvmsg(fd, b, oob, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			return true
		}
		if oobn > 0 {
			d := sock.Datagram{PIDFD: -1}
			if err := sock.ParseControl(oob[:oobn], &d); err == nil {
				d.CloseFDs()
			}
		}
		if n == 0 && oobn == 0 && sock.PeerHungUp(fd) {
			return true
		}
	}
	return false
}

// TestConnHostileTerminatingFlood: repeated terminating frames give one
// event, not one each.
func TestConnHostileTerminatingFlood(t *testing.T) {
	leakCheck(t)
	c, h, raw := hostilePeer(t, nil)
	for range 1000 {
		if err := rawSend(t, raw, frameOf(wire.KindTerminating, 0, 0, 0, nil)); err != nil {
			t.Fatal(err)
		}
	}
	ev := h.nextEvent(t)
	if !errors.Is(ev, ErrTerminationImminent) {
		t.Fatalf("event %v", ev)
	}
	c.Cancel()
	if ev := h.nextEvent(t); !errors.Is(ev, ErrCanceled) {
		t.Fatalf("event after the first terminating one: %v", ev)
	}
}

// TestConnHostileNeverReads: a peer that never reads. Send waits for credit
// (small messages) or socket buffer space (large ones) and returns the ctx
// error; the connection stays usable once the peer reads; Cancel wakes a
// blocked Send and cleans up.
func TestConnHostileNeverReads(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)

	t.Run("window", func(t *testing.T) {
		leakCheck(t)
		c, _, _ := hostilePeer(t, nil)
		for i := range wire.CreditWindow {
			if err := c.Send(ctx, Dict("i", Int64(int64(i)))); err != nil {
				t.Fatal(err)
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := c.Send(sctx, Dict()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send past the window: %v", err)
		}
	})

	t.Run("socket buffer", func(t *testing.T) {
		leakCheck(t)
		c, h, raw := hostilePeer(t, nil)
		msg := Dict("b", Data(make([]byte, wire.InlineMax-200)))
		for round := range 20 {
			sent := fillSocket(t, ctx, c)
			// The peer reads everything, and grants the credit back.
			b := make([]byte, wire.InlineMax)
			got, bytes := 0, 0
			for {
				n, _, _, _, err := unix.Recvmsg(raw, b, nil, unix.MSG_DONTWAIT)
				if err != nil {
					break
				}
				if h, err := wire.ParseHeader(b[:n]); err == nil && h.Kind == wire.KindMessage {
					got++
					bytes += n - wire.HeaderSize
				}
			}
			if got != sent {
				t.Fatalf("round %d: peer read %d messages, %d were sent", round, got, sent)
			}
			if got > 0 {
				rawSend(t, raw, creditFrame(got, bytes))
			}
			// A timed-out send leaves nothing behind: this one, with no
			// deadline of its own, goes through.
			if err := c.Send(context.Background(), Dict()); err != nil {
				t.Fatalf("round %d: send after a timed-out one: %v", round, err)
			}
			n, _, _, _, err := unix.Recvmsg(raw, b, nil, unix.MSG_DONTWAIT)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			rawSend(t, raw, creditFrame(1, n-wire.HeaderSize))
		}
		// Now a Send blocks with no deadline at all; Cancel wakes it.
		for {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
			err := c.Send(sctx, msg)
			cancel()
			if err != nil {
				break
			}
		}
		errc := make(chan error, 1)
		go func() { errc <- c.Send(context.Background(), msg) }()
		time.Sleep(10 * time.Millisecond)
		c.Cancel()
		select {
		case err := <-errc:
			wantConnErr(t, err, ErrInvalid, ErrCanceled)
		case <-time.After(testTimeout):
			t.Fatal("Cancel did not wake a blocked Send")
		}
		h.finalEvent(t, ErrInvalid, ErrCanceled)
	})
}

// TestListenerHostileConnect: malformed connect requests on an endpoint
// cost only themselves; the listener keeps accepting good ones, and closes
// whatever the bad ones carried.
func TestListenerHostileConnect(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	accepted := make(chan *Connection, 16)
	l, err := NewListener()
	if err != nil {
		t.Fatal(err)
	}
	l.SetHandler(func(p *Connection) {
		accepted <- p
		p.SetHandler(HandlerFunc(echo))
		p.Activate()
	})
	l.Activate()
	defer func() {
		l.Cancel()
		waitClosed(t, l.Done(), "listener")
	}()
	ep := mustEndpoint(t, l)
	epfd, err := dupFile(ep.File())
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)

	socket := func(typ int) int {
		fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	pair := func(typ int) (int, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		return fds[0], fds[1]
	}
	connect := frameOf(wire.KindConnect, 0, 1, 0, nil)
	r, w := pipeFDs(t)
	stream, _ := pair(unix.SOCK_STREAM)
	dgram, _ := pair(unix.SOCK_DGRAM)
	sp1, sp2 := pair(unix.SOCK_SEQPACKET)
	unconnected := socket(unix.SOCK_SEQPACKET)
	listening := socket(unix.SOCK_SEQPACKET)
	if err := unix.Bind(listening, &unix.SockaddrUnix{Name: "@goxpc-test-" + t.Name()}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(listening, 1); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		b    []byte
		fds  []int
	}{
		{"garbage", []byte("hello, listener"), nil},
		{"garbage with descriptors", []byte("hello"), []int{r, w}},
		{"empty", nil, nil},
		{"short", []byte{wire.Version, byte(wire.KindConnect)}, []int{sp1}},
		{"no descriptor", connect, nil},
		{"pipe", connect, []int{r}},
		{"stream socket", connect, []int{stream}},
		{"datagram socket", connect, []int{dgram}},
		{"unconnected socket", connect, []int{unconnected}},
		{"listening socket", connect, []int{listening}},
		{"two descriptors", frameOf(wire.KindConnect, 0, 2, 0, nil), []int{sp1, sp2}},
		{"nfds lie", frameOf(wire.KindConnect, 0, 2, 0, nil), []int{sp1}},
		{"message kind", frameOf(wire.KindMessage, 0, 1, 0, nil), []int{sp1}},
		{"with a body", frameOf(wire.KindConnect, 0, 1, 0, []byte("body")), []int{sp1}},
	}
	for _, tc := range bad {
		if err := rawSend(t, epfd, tc.b, tc.fds...); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	// A good connection after all that.
	c := dialEndpointT(t, ep, nil)
	if _, err := c.SendWithReply(ctx, Dict()); err != nil {
		t.Fatalf("good connection after hostile ones: %v", err)
	}
	select {
	case <-accepted:
	default:
		t.Fatal("the good connection was not accepted")
	}
	select {
	case p := <-accepted:
		t.Fatalf("a hostile request was accepted: peer %v", p.Peer())
	default:
	}
	if n := len(l.Peers()); n != 1 {
		t.Errorf("listener has %d peers, want 1", n)
	}
}

// TestConnSockSendTimeouts: sends whose ctx ends just as the socket becomes
// writable must not leave a stale deadline behind to fail a later send that
// has no deadline at all.
func TestConnSockSendTimeouts(t *testing.T) {
	leakCheck(t)
	a, b, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sock.New(a, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		// A slow reader: the buffer keeps filling and emptying.
		defer close(drained)
		defer unix.Close(b)
		buf := make([]byte, wire.InlineMax)
		for {
			select {
			case <-stop:
				return
			default:
			}
			unix.Recvmsg(b, buf, nil, unix.MSG_DONTWAIT)
			time.Sleep(time.Duration(len(buf)%7) * time.Microsecond)
		}
	}()
	defer func() { close(stop); <-drained }()
	p := make([]byte, 16<<10)
	n := 3000
	if connRace {
		n = 1000
	}
	timedOut := 0
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%50)*time.Microsecond)
		if err := s.Send(ctx, p, nil); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("send %d: %v", i, err)
			}
			timedOut++
		}
		cancel()
		if err := s.Send(context.Background(), p, nil); err != nil {
			t.Fatalf("send %d without a deadline, after a timed-out one: %v", i, err)
		}
	}
	t.Logf("%d of %d sends timed out", timedOut, n)
}

// TestConnReplyNotSentStaysOpen: a reply whose context ends before it can
// leave (the peer is behind by a full socket buffer) is not used up: the
// message can be answered again once the peer reads, and the peer gets
// exactly one reply.
func TestConnReplyNotSentStaysOpen(t *testing.T) {
	leakCheck(t)
	ctx := testCtx(t)
	msgs := make(chan *Message, 1)
	c, _, raw := hostilePeer(t, func(ctx context.Context, m *Message) {
		m.Defer()
		msgs <- m
	})
	rawSend(t, raw, frameOf(wire.KindRequest, 0, 0, 7, mustBody(t, Dict("q", Int64(1)))))
	var m *Message
	select {
	case m = <-msgs:
	case <-ctx.Done():
		t.Fatal("the request was not delivered")
	}
	// Fill the socket: the raw peer reads nothing.
	fillSocket(t, ctx, c)
	ended, cancel := context.WithCancel(ctx)
	cancel()
	tx := c.Transactions().Count()
	for range 2 {
		if err := m.Reply(ended, Dict("a", Int64(2))); !errors.Is(err, context.Canceled) {
			t.Fatalf("Reply on a full socket with an ended context: %v", err)
		}
	}
	if n := c.Transactions().Count(); n != tx || n == 0 {
		t.Errorf("transactions %d after the failed replies, want %d (still open)", n, tx)
	}
	// The peer reads everything; now the reply goes, once.
	replies := 0
	b := make([]byte, wire.InlineMax)
	drain := func() {
		for {
			n, _, _, _, err := unix.Recvmsg(raw, b, nil, unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			if h, err := wire.ParseHeader(b[:n]); err == nil && h.Kind == wire.KindReply && h.ID == 7 {
				replies++
			}
		}
	}
	drain()
	if err := m.Reply(ctx, Dict("a", Int64(2))); err != nil {
		t.Fatalf("Reply once the peer read: %v", err)
	}
	if err := m.Reply(ctx, Dict("a", Int64(3))); !errors.Is(err, ErrAlreadyReplied) {
		t.Fatalf("second Reply: %v", err)
	}
	deadline := time.Now().Add(testTimeout)
	for replies == 0 && time.Now().Before(deadline) {
		drain()
		time.Sleep(time.Millisecond)
	}
	drain()
	if replies != 1 {
		t.Errorf("the peer got %d replies, want 1", replies)
	}
	if n := c.Transactions().Count(); n != tx-1 {
		t.Errorf("transactions %d after the reply, want %d", n, tx-1)
	}
}

// fillSocket sends large messages on c until one times out in the socket
// (well inside the flow-control window: few large messages), and returns
// how many went.
func fillSocket(t *testing.T, ctx context.Context, c *Connection) int {
	t.Helper()
	msg := Dict("b", Data(make([]byte, wire.InlineMax-200)))
	sent := 0
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		err := c.Send(sctx, msg)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return sent
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
		if sent > wire.CreditWindow/2 {
			t.Fatal("the socket buffer never filled")
		}
	}
}
