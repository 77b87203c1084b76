package xpc

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/sock"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// fuzzDatagram is one datagram of FuzzConnFrames's input.
type fuzzDatagram struct {
	b    []byte
	nfds int // pipe descriptors to attach
}

// fuzzDatagrams splits the fuzzer's bytes into datagrams. Each starts with a
// control byte and a 16-bit length: the low two bits of the control byte
// say how many descriptors go with the datagram; with bit 2 set, a frame
// header is put in front of the payload (kind from bits 4-7, descriptor
// count from the low bits, a request id counting from 1), so that the
// fuzzer reaches past the header checks with little effort.
func fuzzDatagrams(data []byte) []fuzzDatagram {
	var out []fuzzDatagram
	for id := uint64(1); len(data) >= 3 && len(out) < 64; id++ {
		ctl := data[0]
		n := min(int(binary.LittleEndian.Uint16(data[1:])), len(data)-3)
		payload := data[3 : 3+n]
		data = data[3+n:]
		d := fuzzDatagram{nfds: int(ctl & 3)}
		if ctl&4 != 0 {
			d.b = frameOf(wire.Kind(ctl>>4), 0, uint32(d.nfds), id, payload)
		} else {
			d.b = append([]byte(nil), payload...)
		}
		out = append(out, d)
	}
	return out
}

// fuzzInput encodes datagrams in fuzzDatagrams's format, for the seeds.
func fuzzInput(ds ...fuzzDatagram) []byte {
	var b []byte
	for _, d := range ds {
		b = append(b, byte(d.nfds))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(d.b)))
		b = append(b, d.b...)
	}
	return b
}

// FuzzConnFrames sends the fuzzer's datagrams, with descriptors attached, to
// a peer connection from the raw far end, then closes that end. Whatever
// came, the connection must end because the peer went away or with a
// protocol error, have settled each of its own requests (with a reply or an
// error), and leave no descriptor or goroutine behind.
func FuzzConnFrames(f *testing.F) {
	body := func(obj Object) []byte {
		b, err := Encode(obj)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	msg := body(Dict("op", "ping", "n", 1))
	f.Add(fuzzInput(fuzzDatagram{b: frameOf(wire.KindMessage, 0, 0, 0, msg)}))
	f.Add(fuzzInput(
		fuzzDatagram{b: frameOf(wire.KindRequest, 0, 0, 1, msg)},
		fuzzDatagram{b: frameOf(wire.KindRequest, 0, 0, 2, msg)},
		fuzzDatagram{b: frameOf(wire.KindCredit, 0, 0, 4, nil)},
	))
	f.Add(fuzzInput(fuzzDatagram{b: frameOf(wire.KindTerminating, 0, 0, 0, nil)}))
	f.Add(fuzzInput(fuzzDatagram{b: frameOf(wire.KindReply, 0, 0, 7, msg)}))
	f.Add(fuzzInput(
		fuzzDatagram{b: frameOf(wire.KindReply, 0, 0, 2, msg)},
		fuzzDatagram{b: frameOf(wire.KindReply, 0, 0, 1, body(NewErrorObject("nope")))},
		fuzzDatagram{b: frameOf(wire.KindReply, wire.FlagNoReply, 0, 3, nil)},
	))
	pr, pw, err := os.Pipe()
	if err != nil {
		f.Fatal(err)
	}
	var w writer // a body whose descriptor travels beside it, as a frame's does
	w.reset(nil, Limits{})
	if err := w.body(MagicLocal, Dict("fd", NewFD(pr))); err != nil {
		f.Fatal(err)
	}
	withFD := w.b
	pr.Close()
	pw.Close()
	f.Add(fuzzInput(fuzzDatagram{b: frameOf(wire.KindMessage, 0, 1, 0, withFD), nfds: 1}))
	f.Add(fuzzInput(fuzzDatagram{b: frameOf(wire.KindRequest, 0, 1, 1, withFD), nfds: 1}, fuzzDatagram{b: frameOf(wire.KindMessage, 0, 0, 0, msg)}))
	f.Add(fuzzInput(fuzzDatagram{b: frameOf(wire.KindMessage, 0, 2, 0, msg), nfds: 1}))
	f.Add(fuzzInput(fuzzDatagram{b: []byte{wire.Version}}, fuzzDatagram{}))
	// The byte flow control: a window, a stalled sender, credit for bytes,
	// acknowledgements (the connection's own requests get no out-of-line
	// replies, so any is a protocol error).
	f.Add(fuzzInput(
		fuzzDatagram{b: frameOf(wire.KindWindow, 0, 0, 4*wire.InitialWindow, nil)},
		fuzzDatagram{b: frameOf(wire.KindRequest, 0, 0, 1, msg)},
		fuzzDatagram{b: frameOf(wire.KindStalled, 0, 0, 0, nil)},
		fuzzDatagram{b: frameOf(wire.KindCredit, 0, 0, 1|uint64(len(msg))<<wire.CreditBytesShift, nil)},
	))
	f.Add(fuzzInput(fuzzDatagram{b: frameOf(wire.KindAck, 0, 0, 1<<16, nil)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		datagrams := fuzzDatagrams(data)
		leakCheck(t)
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		fdsBefore := len(openFDs(t))
		a, raw, err := sock.Pair()
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := newConfig(nil)
		if err != nil {
			unix.Close(a)
			unix.Close(raw)
			t.Fatal(err)
		}
		c, err := newPeerConnection(cfg, a)
		if err != nil {
			unix.Close(raw)
			t.Fatal(err)
		}
		c.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
			_ = CloseAttachments(m.Body)
			if m.WantsReply() {
				_ = m.Reply(ctx, Dict("ok", true))
			}
		}))
		c.Activate()
		// Requests of the connection's own, ids 1 to 3, for fuzzed
		// replies to answer (the raw end never reads them).
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := make([]*Call, 3)
		for i := range calls {
			calls[i] = c.Go(ctx, Dict("q", i))
		}
		for i, d := range datagrams {
			fds := make([]int, 0, 4)
			for range d.nfds {
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				fds = append(fds, p[0], p[1])
			}
			err := rawSend(t, raw, d.b, fds[:d.nfds]...)
			closeRawFDs(fds)
			if err == unix.EAGAIN {
				t.Fatalf("datagram %d: the connection stopped reading (%v)", i, err)
			}
			if err != nil {
				break // the connection gave up and closed its end
			}
		}
		unix.Close(raw)
		waitClosed(t, c.Done(), "fuzzed connection")
		for i, call := range calls {
			select {
			case <-call.Done():
			default:
				t.Fatalf("request %d still pending after the connection ended", i+1)
			}
			if r, err := call.Result(); err == nil {
				_ = CloseAttachments(r)
			} else if r != nil {
				t.Fatalf("request %d: both a reply and %v", i+1, err)
			}
		}
		// Every descriptor is closed by the time the connection is done
		// (or just after, by the goroutine that reported it), not left
		// for the garbage collector's finalizers.
		for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
			n := len(openFDs(t))
			if n <= fdsBefore {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d descriptors open after the connection ended, %d before", n, fdsBefore)
			}
		}
		err = c.Err()
		if !errors.Is(err, ErrPeerGone) && !errors.Is(err, ErrProtocol) {
			t.Fatalf("connection ended with %v, want ErrPeerGone or ErrProtocol", err)
		}
	})
}
