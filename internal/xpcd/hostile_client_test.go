package xpcd

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// TestLookupFloodNeverRead: a client that sends lookups and never reads
// the replies does not make xpcd hold replies without end: once its socket
// is full and maxUnsentReplies more wait, xpcd closes the connection. Other
// clients are served meanwhile.
func TestLookupFloodNeverRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: h.paths.Socket}); err != nil {
		t.Fatal(err)
	}
	// A lookup request as the library frames it (docs/PROTOCOL.md §7):
	// version 1, kind 2 (request), no flags, one descriptor, the id.
	body, err := lookupBody()
	if err != nil {
		t.Fatal(err)
	}
	frame := func(id uint64) []byte {
		b := make([]byte, 16, 16+len(body))
		b[0], b[1] = 1, 2
		binary.LittleEndian.PutUint32(b[4:], 1)
		binary.LittleEndian.PutUint64(b[8:], id)
		return append(b, body...)
	}
	closed := false
	deadline := time.Now().Add(10 * time.Second)
	sent := 0
	for id := uint64(1); !closed && time.Now().Before(deadline); id++ {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, q := pair[0], pair[1]
		for {
			err = unix.Sendmsg(fd, frame(id), unix.UnixRights(q), nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			if err != unix.EAGAIN || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		unix.Close(p)
		unix.Close(q)
		if err != nil {
			closed = true // EPIPE, ECONNRESET: xpcd has closed it
			break
		}
		sent++
	}
	if !closed {
		t.Fatalf("xpcd still took lookups after %d unread replies", sent)
	}
	t.Logf("xpcd closed the connection after %d lookups", sent)
	// Others are served as before.
	if _, err := h.admin(bootstrap.OpList); err != nil {
		t.Fatalf("a list request after the flood: %v", err)
	}
}

// lookupBody encodes {"op":"lookup","name":...,"socket":<fd>}: the
// descriptor object is a bare tag in the body, its descriptor travels
// beside it.
func lookupBody() ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer w.Close()
	b, _, err := xpc.AppendBody(nil, xpc.MagicLocal, xpc.Dict(bootstrap.KeyOp, bootstrap.OpLookup,
		bootstrap.KeyName, "org.goxpc.test.nobody", bootstrap.KeySocket, xpc.NewFD(r)))
	return b, err
}
