package xpc

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc/internal/bootstrap"
)

// mirrored starts a listener whose peers echo and mirror to m, as a
// Service's listeners do, and returns a client connected to it.
func mirrored(t *testing.T, m *mirror, h func(ctx context.Context, msg *Message)) *Connection {
	t.Helper()
	l, err := NewListener()
	if err != nil {
		t.Fatal(err)
	}
	l.cfg.mirror = m
	serveOn(t, l, handlerFor(h))
	return dial(t, l, nil)
}

// monitorPair attaches one end of a new socket pair to m and returns the
// other, the monitor's.
func monitorPair(t *testing.T, m *mirror) *os.File {
	t.Helper()
	// Non-blocking, so that the monitor's end is pollable and its reads
	// take deadlines.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	svc := os.NewFile(uintptr(fds[1]), "service end")
	m.attach(NewFD(svc))
	svc.Close()
	return os.NewFile(uintptr(fds[0]), "monitor end")
}

// nextRecord reads one record from the monitor's end.
func nextRecord(t *testing.T, f *os.File) *Dictionary {
	t.Helper()
	buf := make([]byte, bootstrap.MonitorRecordMax+4096)
	f.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := f.Read(buf)
	if err != nil {
		t.Fatalf("no record: %v", err)
	}
	obj, err := Decode(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*Dictionary)
}

// A request and its reply are mirrored, in both directions, with the
// peer, the ids, the body's size, the descriptor count and the body.
func TestMirrorRequestAndReply(t *testing.T) {
	var m mirror
	defer m.close()
	c := mirrored(t, &m, echo)
	mon := monitorPair(t, &m)
	defer mon.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	req := Dict("cmd", "ping", "file", NewFD(r))
	reply, err := c.SendWithReply(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	CloseAttachments(reply)
	body, _, err := AppendBody(nil, MagicLocal, Dict("cmd", "ping", "file", NewFD(r)))
	if err != nil {
		t.Fatal(err)
	}
	in, out := nextRecord(t, mon), nextRecord(t, mon)
	for _, c := range []struct {
		rec       *Dictionary
		dir, kind string
	}{{in, bootstrap.MonIn, bootstrap.MonRequest}, {out, bootstrap.MonOut, bootstrap.MonReply}} {
		if s, _ := c.rec.String(bootstrap.KeyMonDir); s != c.dir {
			t.Errorf("dir %q, want %q: %s", s, c.dir, Format(c.rec))
		}
		if s, _ := c.rec.String(bootstrap.KeyMonKind); s != c.kind {
			t.Errorf("kind %q, want %q", s, c.kind)
		}
		if pid, _ := c.rec.Int64(bootstrap.KeyMonPID); pid != int64(os.Getpid()) {
			t.Errorf("pid %d, want %d", pid, os.Getpid())
		}
		if n, _ := c.rec.Int64(bootstrap.KeyMonFDs); n != 1 {
			t.Errorf("fds %d, want 1", n)
		}
		if n, _ := c.rec.Int64(bootstrap.KeyMonSize); n != int64(len(body)) {
			t.Errorf("size %d, want %d", n, len(body))
		}
		if b, _ := c.rec.Data(bootstrap.KeyMonBody); !bytes.Equal(b, body) {
			t.Errorf("body differs from the message's encoding")
		}
	}
	id, _ := in.Uint64(bootstrap.KeyMonID)
	to, err := out.Uint64(bootstrap.KeyMonReplyTo)
	if err != nil || to != id || id == 0 {
		t.Errorf("reply_to %d (%v), request id %d", to, err, id)
	}
	a, _ := in.Int64(bootstrap.KeyMonConn)
	b, _ := out.Int64(bootstrap.KeyMonConn)
	if a != b || a < 0 {
		t.Errorf("conn %d and %d", a, b)
	}
}

// A body over MonitorBodyMax is cut there, and the record says so and
// gives the whole size.
func TestMirrorTruncatesLargeBodies(t *testing.T) {
	var m mirror
	defer m.close()
	c := mirrored(t, &m, func(context.Context, *Message) {})
	mon := monitorPair(t, &m)
	defer mon.Close()
	big := make([]byte, 3*bootstrap.MonitorBodyMax)
	if err := c.Send(testCtx(t), Dict("blob", Data(big))); err != nil {
		t.Fatal(err)
	}
	rec := nextRecord(t, mon)
	b, _ := rec.Data(bootstrap.KeyMonBody)
	size, _ := rec.Int64(bootstrap.KeyMonSize)
	if tr, _ := rec.Bool(bootstrap.KeyMonTruncated); !tr || len(b) != bootstrap.MonitorBodyMax || size <= int64(len(big)) {
		t.Errorf("truncated %v, body %d bytes, size %d", tr, len(b), size)
	}
}

// A monitor that goes away is detached: its descriptor is closed, its
// goroutine ends, and later messages cost the one load again.
func TestMirrorMonitorGoneDetaches(t *testing.T) {
	leakCheck(t)
	var m mirror
	c := mirrored(t, &m, echo)
	mon := monitorPair(t, &m)
	if m.attached() != 1 {
		t.Fatalf("%d monitors attached", m.attached())
	}
	mon.Close()
	deadline := time.Now().Add(testTimeout)
	for m.attached() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the monitor is still attached after it hung up")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.SendWithReply(testCtx(t), Dict("cmd", "ping")); err != nil {
		t.Fatal(err)
	}
}

// A monitor that never reads does not hold the service up: records that
// do not fit are dropped and counted, and the count comes with the next
// record that gets through.
func TestMirrorSlowMonitorDrops(t *testing.T) {
	var m mirror
	defer m.close()
	c := mirrored(t, &m, echo)
	mon := monitorPair(t, &m)
	defer mon.Close()
	const n = 2000
	pad := Data(make([]byte, 1024))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		if _, err := c.SendWithReply(ctx, Dict("i", Int64(i), "pad", pad)); err != nil {
			t.Fatalf("request %d with a monitor that does not read: %v", i, err)
		}
	}
	// Read what the socket holds, then one more exchange. The record of
	// the flood's last reply may be written after the drain (the client
	// can have its reply before the service has mirrored it): records go
	// on being counted until the last exchange's request, and every
	// record's drop count is added up.
	read, dropped := 0, uint64(0)
	count := func(rec *Dictionary) {
		read++
		d, _ := rec.Uint64(bootstrap.KeyMonDropped)
		dropped += d
	}
	buf := make([]byte, bootstrap.MonitorRecordMax)
	rc, err := mon.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Read(func(fd uintptr) bool {
		for {
			n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err != nil {
				return true
			}
			obj, err := Decode(buf[:n])
			if err != nil {
				t.Errorf("record %d: %v", read, err)
				return true
			}
			count(obj.(*Dictionary))
		}
	})
	if _, err := c.SendWithReply(ctx, Dict("last", true)); err != nil {
		t.Fatal(err)
	}
	for {
		rec := nextRecord(t, mon)
		if kind, _ := rec.String(bootstrap.KeyMonKind); kind == bootstrap.MonRequest && isLast(rec) {
			d, _ := rec.Uint64(bootstrap.KeyMonDropped)
			dropped += d
			break
		}
		count(rec)
	}
	if dropped == 0 || read+int(dropped) != 2*n {
		t.Errorf("read %d records, %d dropped; want a drop, and %d in all", read, dropped, 2*n)
	}
}

// isLast reports whether rec's body is the request {"last": true}.
func isLast(rec *Dictionary) bool {
	body, _ := rec.Data(bootstrap.KeyMonBody)
	obj, err := Decode(body)
	if err != nil {
		return false
	}
	d, ok := obj.(*Dictionary)
	return ok && d.Get("last") != nil
}

// What xpcd hands the service is checked: anything but a SOCK_SEQPACKET
// socket is closed and attaches nothing.
func TestMirrorAttachRefusesOtherDescriptors(t *testing.T) {
	var m mirror
	defer m.close()
	leakCheck(t)
	m.attach(nil)
	m.attach(String("not a descriptor"))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	m.attach(NewFD(r))
	r.Close()
	w.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	m.attach(NewFD(a))
	a.Close()
	b.Close()
	if m.attached() != 0 {
		t.Fatalf("%d monitors attached", m.attached())
	}
}

// BenchmarkMonitor measures a round trip to a service's listener with no
// monitor attached (off: the one atomic load) and with one that reads
// every record (on).
func BenchmarkMonitor(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			var m mirror
			defer m.close()
			l, err := NewListener()
			if err != nil {
				b.Fatal(err)
			}
			l.cfg.mirror = &m
			l.SetHandler(func(p *Connection) { p.SetHandler(HandlerFunc(echo)); p.Activate() })
			l.Activate()
			defer l.Cancel()
			ep, err := l.Endpoint()
			if err != nil {
				b.Fatal(err)
			}
			c, err := NewEndpointConnection(ep)
			ep.Close()
			if err != nil {
				b.Fatal(err)
			}
			c.Activate()
			defer c.Cancel()
			if on {
				fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				svc := os.NewFile(uintptr(fds[1]), "service end")
				m.attach(NewFD(svc))
				svc.Close()
				mon := os.NewFile(uintptr(fds[0]), "monitor end")
				defer mon.Close()
				go func() {
					buf := make([]byte, bootstrap.MonitorRecordMax)
					for {
						if _, err := mon.Read(buf); err != nil {
							return
						}
					}
				}()
			}
			ctx := context.Background()
			msg := Dict("cmd", "ping", "n", Int64(42))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := c.SendWithReply(ctx, msg)
				if err != nil {
					b.Fatal(err)
				}
				_ = r
			}
		})
	}
}
