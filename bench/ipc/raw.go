package ipc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// The raw system is the floor: bytes written straight onto AF_UNIX sockets
// from Go, through the same runtime poller goxpc uses, with no codec. Pings
// go over a SOCK_SEQPACKET socket (goxpc's socket type) as datagrams of
// goxpc's frame size, echoed by the server; bulk transfers go over a
// SOCK_STREAM socket.

// serveRaw listens on two sockets in dir: raw.sock (SOCK_SEQPACKET, echo
// every datagram) and raw-stream.sock (SOCK_STREAM, bulk).
func serveRaw(dir string) (packet, stream string, stop func(), err error) {
	packet = filepath.Join(dir, "raw.sock")
	stream = filepath.Join(dir, "raw-stream.sock")
	pl, err := net.Listen("unixpacket", packet)
	if err != nil {
		return "", "", nil, err
	}
	sl, err := net.Listen("unix", stream)
	if err != nil {
		pl.Close()
		return "", "", nil, err
	}
	go acceptLoop(pl, echoPackets)
	go acceptLoop(sl, serveBulkStream)
	return packet, stream, func() { pl.Close(); sl.Close() }, nil
}

func acceptLoop(l net.Listener, serve func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}

func echoPackets(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// Bulk requests on the stream socket: a 16-byte header (mode, length, both
// little-endian u64) and length bytes. The server reads them all, then
// answers with their checksum (8 bytes), followed in echo mode by the same
// bytes.
const (
	bulkOneWay = 1
	bulkEcho   = 2
)

func serveBulkStream(c net.Conn) {
	defer c.Close()
	var hdr [16]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		mode := binary.LittleEndian.Uint64(hdr[:])
		n := binary.LittleEndian.Uint64(hdr[8:])
		if n > 1<<30 {
			return
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		var sum [8]byte
		binary.LittleEndian.PutUint64(sum[:], checksum(buf))
		out := net.Buffers{sum[:]}
		if mode == bulkEcho {
			out = append(out, buf)
		}
		if _, err := out.WriteTo(c); err != nil {
			return
		}
	}
}

// rawCaller sends pings on one SOCK_SEQPACKET connection. It has no request
// ids, so it cannot be shared by concurrent requesters.
type rawCaller struct {
	c    *net.UnixConn
	wbuf []byte
	rbuf []byte
}

func dialRaw(path string, size int) (*rawCaller, error) {
	c, err := net.Dial("unixpacket", path)
	if err != nil {
		return nil, err
	}
	w := make([]byte, size)
	for i := range w {
		w[i] = payload[i%len(payload)]
	}
	return &rawCaller{c: c.(*net.UnixConn), wbuf: w, rbuf: make([]byte, 64<<10)}, nil
}

func (r *rawCaller) call(_ context.Context, seq int64) error {
	binary.LittleEndian.PutUint64(r.wbuf, uint64(seq))
	if _, err := r.c.Write(r.wbuf); err != nil {
		return err
	}
	n, err := r.c.Read(r.rbuf)
	if err != nil {
		return err
	}
	if n != len(r.wbuf) || int64(binary.LittleEndian.Uint64(r.rbuf)) != seq {
		return fmt.Errorf("raw: bad echo of %d (%d bytes)", seq, n)
	}
	return nil
}

func (r *rawCaller) close() error { return r.c.Close() }

// rawBulk moves buffers over one SOCK_STREAM connection.
type rawBulk struct {
	c    net.Conn
	rbuf []byte
}

func dialRawBulk(path string) (*rawBulk, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return &rawBulk{c: c}, nil
}

func (r *rawBulk) once(src []byte, sum uint64, echo bool) error {
	var hdr [16]byte
	mode := uint64(bulkOneWay)
	if echo {
		mode = bulkEcho
	}
	binary.LittleEndian.PutUint64(hdr[:], mode)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(src)))
	out := net.Buffers{hdr[:], src}
	if _, err := out.WriteTo(r.c); err != nil {
		return err
	}
	var got [8]byte
	if _, err := io.ReadFull(r.c, got[:]); err != nil {
		return err
	}
	if binary.LittleEndian.Uint64(got[:]) != sum {
		return errors.New("raw: bad checksum")
	}
	if !echo {
		return nil
	}
	if cap(r.rbuf) < len(src) {
		r.rbuf = make([]byte, len(src))
	}
	_, err := io.ReadFull(r.c, r.rbuf[:len(src)])
	return err
}

func (r *rawBulk) close() error { return r.c.Close() }

// raw-handoff is raw-unix with goxpc's goroutine structure and nothing
// else: the server answers each datagram from a new goroutine (goxpc starts
// a dispatcher when a message arrives at an idle connection), and the
// client's datagrams are read by a reader goroutine that hands each one to
// the waiting caller through a channel (goxpc's reader completing a Call).
// It is a diagnostic, not among the default systems: beside raw-unix it
// shows what those two goroutine switches cost per round trip.

// serveRawHandoff listens on raw-handoff.sock (SOCK_SEQPACKET).
func serveRawHandoff(dir string) (string, func(), error) {
	return servePackets(filepath.Join(dir, "raw-handoff.sock"), echoPacketsHandoff)
}

// servePackets listens on a SOCK_SEQPACKET socket at path and serves each
// connection with serve, on a goroutine of its own.
func servePackets(path string, serve func(net.Conn)) (string, func(), error) {
	l, err := net.Listen("unixpacket", path)
	if err != nil {
		return "", nil, err
	}
	go acceptLoop(l, serve)
	return path, func() { l.Close() }, nil
}

func echoPacketsHandoff(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			return
		}
		out := append([]byte(nil), buf[:n]...)
		go c.Write(out)
	}
}

// rawHandoffCaller is a rawCaller whose replies come through a reader
// goroutine.
type rawHandoffCaller struct {
	r       *rawCaller
	replies chan []byte
}

func dialRawHandoff(path string, size int) (*rawHandoffCaller, error) {
	r, err := dialRaw(path, size)
	if err != nil {
		return nil, err
	}
	h := &rawHandoffCaller{r: r, replies: make(chan []byte, 1)}
	go func() {
		defer close(h.replies)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.c.Read(buf)
			if err != nil {
				return
			}
			h.replies <- append([]byte(nil), buf[:n]...)
		}
	}()
	return h, nil
}

func (h *rawHandoffCaller) call(_ context.Context, seq int64) error {
	binary.LittleEndian.PutUint64(h.r.wbuf, uint64(seq))
	if _, err := h.r.c.Write(h.r.wbuf); err != nil {
		return err
	}
	b, ok := <-h.replies
	if !ok {
		return errors.New("raw-handoff: connection closed")
	}
	if len(b) != len(h.r.wbuf) || int64(binary.LittleEndian.Uint64(b)) != seq {
		return fmt.Errorf("raw-handoff: bad echo of %d (%d bytes)", seq, len(b))
	}
	return nil
}

func (h *rawHandoffCaller) close() error { return h.r.close() }

// raw-nosched is raw-unix with its reads and writes made as goxpc makes
// them: non-blocking system calls that bypass the Go scheduler's
// system-call bookkeeping (syscall.RawSyscall), waiting in the runtime
// poller when the socket is not ready. Through net.Conn each read and
// write enters the scheduler's system-call state, and the first one after
// the process was idle wakes the runtime's monitor thread; raw-unix pays
// that, goxpc no longer does. It is a diagnostic, not among the default
// systems: the floor for a Go program that does what goxpc does.

// serveRawNoSched listens on raw-nosched.sock (SOCK_SEQPACKET).
func serveRawNoSched(dir string) (string, func(), error) {
	return servePackets(filepath.Join(dir, "raw-nosched.sock"), echoPacketsNoSched)
}

// noSchedConn reads and writes datagrams on a connected socket with raw
// non-blocking system calls, waiting in the poller.
type noSchedConn struct {
	c  *net.UnixConn
	rc syscall.RawConn
	// The callbacks' state, kept here so that they are made once.
	buf  []byte
	n    int
	err  error
	read func(fd uintptr) bool
	wr   func(fd uintptr) bool
}

func newNoSchedConn(c net.Conn) (*noSchedConn, error) {
	uc := c.(*net.UnixConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &noSchedConn{c: uc, rc: rc}
	s.read = func(fd uintptr) bool {
		s.n, s.err = recvNow(fd, s.buf)
		return s.err != syscall.EAGAIN
	}
	s.wr = func(fd uintptr) bool {
		r, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)), syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
		s.n, s.err = int(r), nil
		if e != 0 {
			s.err = e
		}
		return e != syscall.EAGAIN
	}
	return s, nil
}

// recvNow reads one datagram from fd into b without waiting and without
// the scheduler's system-call bookkeeping; syscall.EAGAIN if none waits.
func recvNow(fd uintptr, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}

func (s *noSchedConn) recv(b []byte) (int, error) {
	s.buf = b
	if err := s.rc.Read(s.read); err != nil {
		return 0, err
	}
	return s.n, s.err
}

func (s *noSchedConn) send(b []byte) error {
	s.buf = b
	if err := s.rc.Write(s.wr); err != nil {
		return err
	}
	return s.err
}

func echoPacketsNoSched(c net.Conn) {
	s, err := newNoSchedConn(c)
	if err != nil {
		c.Close()
		return
	}
	echoDatagrams(s)
}

func (s *noSchedConn) close() error { return s.c.Close() }

func dialRawNoSched(path string, size int) (*dgCaller, error) {
	c, err := net.Dial("unixpacket", path)
	if err != nil {
		return nil, err
	}
	s, err := newNoSchedConn(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return newDGCaller(sysRawNoSched, s, size), nil
}

// dgConn is a connected datagram socket a diagnostic reads and writes its
// own way.
type dgConn interface {
	send(b []byte) error
	recv(b []byte) (int, error)
	close() error
}

// echoDatagrams echoes what c receives until the peer goes, then closes c.
func echoDatagrams(c dgConn) {
	defer c.close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.recv(buf)
		if err != nil || n == 0 {
			return
		}
		if err := c.send(buf[:n]); err != nil {
			return
		}
	}
}

// dgCaller pings over a dgConn, as rawCaller does over a net.Conn.
type dgCaller struct {
	name string
	c    dgConn
	wbuf []byte
	rbuf []byte
}

func newDGCaller(name string, c dgConn, size int) *dgCaller {
	w := make([]byte, size)
	for i := range w {
		w[i] = payload[i%len(payload)]
	}
	return &dgCaller{name: name, c: c, wbuf: w, rbuf: make([]byte, 64<<10)}
}

func (r *dgCaller) call(_ context.Context, seq int64) error {
	binary.LittleEndian.PutUint64(r.wbuf, uint64(seq))
	if err := r.c.send(r.wbuf); err != nil {
		return err
	}
	n, err := r.c.recv(r.rbuf)
	if err != nil {
		return err
	}
	if n != len(r.wbuf) || int64(binary.LittleEndian.Uint64(r.rbuf)) != seq {
		return fmt.Errorf("%s: bad echo of %d (%d bytes)", r.name, seq, n)
	}
	return nil
}

func (r *dgCaller) close() error { return r.c.close() }

// raw-epoll is raw-nosched with the socket kept out of Go's poller: each
// end waits on a private epoll instance holding its socket for EPOLLIN
// only, and only that epoll descriptor is registered with the runtime.
// Go registers every pollable descriptor for EPOLLIN|EPOLLOUT|EPOLLET, and
// a socket's EPOLLOUT fires each time the peer takes a datagram, waking a
// thread blocked in epoll_wait for nothing; an epoll descriptor is never
// reported writable. A diagnostic: what goxpc would gain by waiting the
// same way (docs/design/connection-latency.md, the socket out of Go's
// poller).

// epollSock is a socket outside the poller, read through an epoll
// instance inside it. Sends are non-blocking and this benchmark never
// fills the socket, so they never wait.
type epollSock struct {
	fd  int
	ep  *os.File
	rc  syscall.RawConn
	buf []byte
	n   int
	err error
	rd  func(uintptr) bool
}

func newEpollSock(fd int) (*epollSock, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(ep)
		syscall.Close(fd)
		return nil, err
	}
	syscall.SetNonblock(ep, true)
	f := os.NewFile(uintptr(ep), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		syscall.Close(fd)
		return nil, err
	}
	s := &epollSock{fd: fd, ep: f, rc: rc}
	s.rd = func(uintptr) bool {
		s.n, s.err = recvNow(uintptr(s.fd), s.buf)
		return s.err != syscall.EAGAIN
	}
	return s, nil
}

func (s *epollSock) recv(b []byte) (int, error) {
	s.buf = b
	if err := s.rc.Read(s.rd); err != nil {
		return 0, err
	}
	return s.n, s.err
}

func (s *epollSock) send(b []byte) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func (s *epollSock) close() error {
	s.ep.Close()
	return syscall.Close(s.fd)
}

// serveRawEpoll listens on raw-epoll.sock, outside the poller (a blocking
// accept on a goroutine of its own).
func serveRawEpoll(dir string) (string, func(), error) {
	path := filepath.Join(dir, "raw-epoll.sock")
	l, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	if err := syscall.Bind(l, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(l)
		return "", nil, err
	}
	if err := syscall.Listen(l, 128); err != nil {
		syscall.Close(l)
		return "", nil, err
	}
	go func() {
		for {
			fd, _, err := syscall.Accept4(l, syscall.SOCK_CLOEXEC)
			if err != nil {
				return
			}
			s, err := newEpollSock(fd)
			if err != nil {
				continue
			}
			go echoDatagrams(s)
		}
	}()
	return path, func() { syscall.Shutdown(l, syscall.SHUT_RDWR); syscall.Close(l); os.Remove(path) }, nil
}

func dialRawEpoll(path string, size int) (*dgCaller, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	s, err := newEpollSock(fd)
	if err != nil {
		return nil, err
	}
	return newDGCaller(sysRawEpoll, s, size), nil
}

// raw-stream is raw-unix over a SOCK_STREAM socket: each ping is framed by
// a 4-byte little-endian length, as a stream transport for goxpc would
// have to frame its messages, and read through a bufio.Reader so that one
// read usually takes a whole frame. A diagnostic beside raw-unix: what the
// socket type alone costs or saves (docs/PROTOCOL.md §7 says why goxpc
// uses SOCK_SEQPACKET).

// serveRawStream listens on raw-stream-ping.sock (SOCK_STREAM) and echoes
// every frame.
func serveRawStream(dir string) (string, func(), error) {
	path := filepath.Join(dir, "raw-stream-ping.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		return "", nil, err
	}
	go acceptLoop(l, echoFrames)
	return path, func() { l.Close() }, nil
}

// maxStreamFrame bounds a frame raw-stream accepts.
const maxStreamFrame = 64 << 10

func echoFrames(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, maxStreamFrame)
	buf := make([]byte, 4+maxStreamFrame)
	for {
		n, err := readFrame(br, buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:4+n]); err != nil {
			return
		}
	}
}

// readFrame reads one length-framed frame into buf, header included, and
// returns the length of its body.
func readFrame(br *bufio.Reader, buf []byte) (int, error) {
	if _, err := io.ReadFull(br, buf[:4]); err != nil {
		return 0, err
	}
	n := int(binary.LittleEndian.Uint32(buf))
	if n > len(buf)-4 {
		return 0, fmt.Errorf("raw-stream: frame of %d bytes", n)
	}
	_, err := io.ReadFull(br, buf[4:4+n])
	return n, err
}

// rawStreamCaller pings over one SOCK_STREAM connection.
type rawStreamCaller struct {
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte // header and body
	rbuf []byte
}

func dialRawStream(path string, size int) (*rawStreamCaller, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	w := make([]byte, 4+size)
	binary.LittleEndian.PutUint32(w, uint32(size))
	for i := range size {
		w[4+i] = payload[i%len(payload)]
	}
	return &rawStreamCaller{c: c, br: bufio.NewReaderSize(c, maxStreamFrame), wbuf: w, rbuf: make([]byte, 4+maxStreamFrame)}, nil
}

func (r *rawStreamCaller) call(_ context.Context, seq int64) error {
	binary.LittleEndian.PutUint64(r.wbuf[4:], uint64(seq))
	if _, err := r.c.Write(r.wbuf); err != nil {
		return err
	}
	n, err := readFrame(r.br, r.rbuf)
	if err != nil {
		return err
	}
	if n != len(r.wbuf)-4 || int64(binary.LittleEndian.Uint64(r.rbuf[4:])) != seq {
		return fmt.Errorf("raw-stream: bad echo of %d (%d bytes)", seq, n)
	}
	return nil
}

func (r *rawStreamCaller) close() error { return r.c.Close() }
