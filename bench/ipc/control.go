package ipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// ctl is the control channel between the runner and a server child: one end
// of a SOCK_SEQPACKET socket pair, the child's end on its descriptor 3. Each
// datagram is one JSON object, with descriptors attached when the server
// hands one over (goxpc's endpoint).
type ctl struct {
	c   *net.UnixConn
	buf []byte
	oob []byte
}

// ctlFD is the child's descriptor for its end of the control socket.
const ctlFD = 3

func newCtl(f *os.File) (*ctl, error) {
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ipc: control socket: %w", err)
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, fmt.Errorf("ipc: control socket is a %T", fc)
	}
	return &ctl{c: uc, buf: make([]byte, 64<<10), oob: make([]byte, syscall.CmsgSpace(16*4))}, nil
}

// ctlPair makes the control socket pair: the runner's end, and the file to
// pass to the child.
func ctlPair() (*ctl, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("ipc: socketpair: %w", err)
	}
	c, err := newCtl(os.NewFile(uintptr(fds[0]), "ctl"))
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return c, os.NewFile(uintptr(fds[1]), "ctl-child"), nil
}

func (c *ctl) send(v any, fds ...int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	_, _, err = c.c.WriteMsgUnix(b, oob, nil)
	return err
}

// recv reads one datagram into v and returns the descriptors that came with
// it, owned by the caller.
func (c *ctl) recv(v any) ([]int, error) {
	n, oobn, flags, _, err := c.c.ReadMsgUnix(c.buf, c.oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(c.oob[:oobn])
		if err != nil {
			return nil, err
		}
		for i := range msgs {
			r, err := syscall.ParseUnixRights(&msgs[i])
			if err != nil {
				closeFDs(fds)
				return nil, err
			}
			fds = append(fds, r...)
		}
	}
	if flags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0 {
		closeFDs(fds)
		return nil, errors.New("ipc: control message truncated")
	}
	if n == 0 {
		closeFDs(fds)
		return nil, errEOF
	}
	if err := json.Unmarshal(c.buf[:n], v); err != nil {
		closeFDs(fds)
		return nil, fmt.Errorf("ipc: control message: %w", err)
	}
	return fds, nil
}

var errEOF = errors.New("ipc: control socket closed")

func (c *ctl) close() error { return c.c.Close() }

func closeFDs(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// request is what the runner asks of a server child.
type request struct {
	Cmd string `json:"cmd"` // "stats", "profile", "open" or "quit"
	// GC, for stats: collect garbage and return freed memory to the
	// system before measuring, so that RSS and heap reflect live memory.
	GC bool `json:"gc,omitempty"`
	// File, for profile: start a CPU profile into File; empty stops it.
	File string `json:"file,omitempty"`
	// N, for open (idle clients only): open N connections, one round
	// trip each, and keep them.
	N int `json:"n,omitempty"`
}

// ready is the server child's first message: its address, or (goxpc) an
// endpoint descriptor attached.
type ready struct {
	PID        int    `json:"pid"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Addr       string `json:"addr,omitempty"`
	Addr2      string `json:"addr2,omitempty"`
	Err        string `json:"err,omitempty"`
}

// reply answers a request.
type reply struct {
	Stats   *procStats `json:"stats,omitempty"`
	Seconds float64    `json:"seconds,omitempty"` // open: how long it took
	Err     string     `json:"err,omitempty"`
}
