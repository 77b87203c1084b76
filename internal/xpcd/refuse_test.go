package xpcd

import (
	"os"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/internal/wire"
	"golang.org/x/sys/unix"
)

// TestRefuse: a failed pipelined lookup is answered with one refused
// frame holding the error object, written into the socket the client sent
// and then closed; a socket of any other kind is only closed.
func TestRefuse(t *testing.T) {
	oe := notFound("no service named %s in %s", "org.example.none", "user/1000")
	pair := func(typ int) (mine int, end *xpc.FD) {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]) })
		return fds[0], xpc.NewFD(os.NewFile(uintptr(fds[1]), "end"))
	}

	mine, end := pair(unix.SOCK_SEQPACKET)
	if err := refuse(end, oe); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(mine, buf, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatal(err)
	}
	h, err := wire.ParseHeader(buf[:n])
	if err != nil || h.Kind != wire.KindRefused || h.Flags != 0 || h.NFDs != 0 || h.ID != 0 {
		t.Fatalf("header %+v, %v", h, err)
	}
	obj, err := xpc.Decode(buf[wire.HeaderSize:n])
	if err != nil {
		t.Fatal(err)
	}
	eo, ok := obj.(*xpc.ErrorObject)
	if !ok {
		t.Fatalf("body is a %v", obj.Type())
	}
	if r, _ := eo.String(bootstrap.KeyReason); r != bootstrap.ReasonNotFound || eo.Description() != oe.desc {
		t.Fatalf("refusal %s", xpc.Format(eo))
	}
	// Then the end of file: xpcd kept nothing.
	if n, _, err := unix.Recvfrom(mine, buf, unix.MSG_DONTWAIT); n != 0 || err != nil {
		t.Fatalf("after the refusal: %d bytes, %v", n, err)
	}

	mine, end = pair(unix.SOCK_STREAM)
	if err := refuse(end, oe); err == nil {
		t.Fatal("refused into a stream socket")
	}
	if n, _, err := unix.Recvfrom(mine, buf, unix.MSG_DONTWAIT); n != 0 || err != nil {
		t.Fatalf("a stream socket got %d bytes (%v); want nothing, then the end", n, err)
	}
}
