package wire

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/goxpc/xpc/internal/sock"
	"golang.org/x/sys/unix"
)

// pair returns the two ends of a SOCK_SEQPACKET pair, closed when the test
// ends.
func pair(t *testing.T) (int, int) {
	t.Helper()
	a, b, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(a); unix.Close(b) })
	return a, b
}

// recvFrame reads one frame from fd and returns its header and the
// descriptors that came with it, closed when the test ends.
func recvFrame(t *testing.T, fd int) (Header, []int) {
	t.Helper()
	b := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4*MaxFDs))
	n, oobn, _, _, err := unix.Recvmsg(fd, b, oob, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatal(err)
	}
	d := sock.Datagram{PIDFD: -1}
	if err := sock.ParseControl(oob[:oobn], &d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.CloseFDs)
	h, err := ParseHeader(b[:n])
	if err != nil {
		t.Fatal(err)
	}
	return h, d.FDs
}

// TestSendSetsDescriptorCount: whatever count a frame's header says, the
// frame leaves with the number of descriptors actually attached, through
// either sending function.
func TestSendSetsDescriptorCount(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	fds := []int{int(devnull.Fd()), int(devnull.Fd())}

	a, b := pair(t)
	frame := make([]byte, HeaderSize)
	PutHeader(frame, Header{Kind: KindMessage, NFDs: 7, ID: 3})
	if err := SendNow(a, frame, fds); err != nil {
		t.Fatal(err)
	}
	if h, got := recvFrame(t, b); h.NFDs != 2 || len(got) != 2 || h.Kind != KindMessage || h.ID != 3 {
		t.Fatalf("SendNow: header %+v with %d descriptors", h, len(got))
	}

	c, d := pair(t)
	s, err := sock.New(c, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	PutHeader(frame, Header{Kind: KindRequest, NFDs: 9, ID: 4})
	if err := Send(context.Background(), s, frame, fds[:1]); err != nil {
		t.Fatal(err)
	}
	if h, got := recvFrame(t, d); h.NFDs != 1 || len(got) != 1 || h.Kind != KindRequest || h.ID != 4 {
		t.Fatalf("Send: header %+v with %d descriptors", h, len(got))
	}
	PutHeader(frame, Header{Kind: KindCredit, NFDs: 1, ID: 5})
	if err := Send(context.Background(), s, frame, nil); err != nil {
		t.Fatal(err)
	}
	if h, got := recvFrame(t, d); h.NFDs != 0 || len(got) != 0 {
		t.Fatalf("Send without descriptors: header %+v with %d descriptors", h, len(got))
	}
}

// TestSendNowFullBuffer: SendNow never waits: a full socket buffer fails
// it with EAGAIN.
func TestSendNowFullBuffer(t *testing.T) {
	a, _ := pair(t)
	frame := make([]byte, InlineMax)
	PutHeader(frame, Header{Kind: KindMessage})
	for range 1000 {
		err := SendNow(a, frame, nil)
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("a socket nobody reads never filled")
}

// TestOutOfLine: a body written out of line reads back the same; a memfd
// that is not sealed, or is larger than the limit, is refused.
func TestOutOfLine(t *testing.T) {
	body := bytes.Repeat([]byte("xpc!"), 50_000)
	fd, err := WriteOutOfLine(body)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	got, err := ReadOutOfLine(fd, len(body))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if _, err := ReadOutOfLine(fd, len(body)-1); err == nil {
		t.Fatal("a body over the limit was read")
	}
	unsealed, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(unsealed)
	if _, err := ReadOutOfLine(unsealed, len(body)); err == nil {
		t.Fatal("an unsealed memfd was read")
	}
	if _, err := unix.Write(fd, []byte("x")); err == nil {
		t.Fatal("an out-of-line body could be written after it was sealed")
	}
}

// TestRefusedFrame: a refused frame is a refused header followed by the
// body, and what SendNow sends of it parses back as such.
func TestRefusedFrame(t *testing.T) {
	body := []byte("an encoded error object")
	frame := RefusedFrame(body)
	if !bytes.Equal(frame[HeaderSize:], body) {
		t.Fatalf("body %q, want %q", frame[HeaderSize:], body)
	}
	a, b := pair(t)
	if err := SendNow(a, frame, nil); err != nil {
		t.Fatal(err)
	}
	h, fds := recvFrame(t, b)
	if h != (Header{Kind: KindRefused}) || len(fds) != 0 {
		t.Errorf("header %+v with %d descriptors, want a bare refused header", h, len(fds))
	}
}
