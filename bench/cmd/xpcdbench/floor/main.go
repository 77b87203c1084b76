// Command floor is the baseline for xpcdbench's lookup+connect: the same
// brokered design with nothing but blocking system calls on one thread per
// process, no goroutines, no poller, no encoding, no identity checks. It
// is built and run by xpcdbench (go build ./cmd/xpcdbench/floor) and is not
// meant to be run by hand.
//
// Usage:
//
//	floor N
//
// It starts a broker and a service (itself, re-executed), then, as the
// client: N round trips of a 100-byte datagram on one brokered connection,
// then N connections, each: make a socket pair, connect to the broker's
// listening socket, send it one end (SCM_RIGHTS) and close, send a
// 100-byte request on the other end and wait for the echo. The broker
// accepts, reads the end, closes the connection and passes the end to the
// service over a socket pair; the service echoes what it reads until the
// client closes. It prints one JSON object: the p50 and p99 of both, in
// nanoseconds.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Result is what floor prints.
type Result struct {
	ConnectP50   int64 `json:"connect_p50_ns"`
	ConnectP99   int64 `json:"connect_p99_ns"`
	RoundtripP50 int64 `json:"roundtrip_p50_ns"`
	RoundtripP99 int64 `json:"roundtrip_p99_ns"`
}

func main() {
	runtime.LockOSThread()
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "broker":
		err = broker(os.Args[2])
	case len(os.Args) == 2 && os.Args[1] == "service":
		err = service()
	case len(os.Args) == 4 && os.Args[1] == "client":
		var n int
		if n, err = strconv.Atoi(os.Args[3]); err == nil {
			err = client(os.Args[2], n)
		}
	case len(os.Args) == 2:
		var n int
		if n, err = strconv.Atoi(os.Args[1]); err == nil {
			err = run(n)
		}
	default:
		err = fmt.Errorf("usage: floor N")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// run starts the broker and the service, runs the client, and stops them.
func run(n int) error {
	dir, err := os.MkdirTemp("", "xpcdbench-floor")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "broker.sock")
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	toService, fromBroker := os.NewFile(uintptr(sp[0]), "broker"), os.NewFile(uintptr(sp[1]), "service")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The broker, the service and the client die with this process.
	dies := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	br := exec.Command(self, "broker", path)
	br.SysProcAttr = dies
	br.ExtraFiles = []*os.File{toService} // descriptor 3
	br.Stderr = os.Stderr
	sv := exec.Command(self, "service")
	sv.SysProcAttr = dies
	sv.ExtraFiles = []*os.File{fromBroker}
	sv.Stderr = os.Stderr
	if err := br.Start(); err != nil {
		return err
	}
	defer func() { br.Process.Kill(); br.Wait() }()
	if err := sv.Start(); err != nil {
		return err
	}
	defer func() { sv.Process.Kill(); sv.Wait() }()
	toService.Close()
	fromBroker.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the broker did not listen")
		}
	}
	cl := exec.Command(self, "client", path, strconv.Itoa(n))
	cl.Stdout, cl.Stderr = os.Stdout, os.Stderr
	cl.SysProcAttr = dies
	return cl.Run()
}

func broker(path string) error {
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: tmp}); err != nil {
		return err
	}
	if err := unix.Listen(l, 128); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		c, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
		if err != nil {
			return err
		}
		fd, err := recvFD(c, buf, oob)
		unix.Close(c)
		if err != nil {
			return err
		}
		err = unix.Sendmsg(3, []byte("connect"), unix.UnixRights(fd), nil, unix.MSG_NOSIGNAL)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
}

func service() error {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		fd, err := recvFD(3, buf, oob)
		if err != nil {
			return err
		}
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n == 0 {
				break
			}
			if err := unix.Send(fd, buf[:n], unix.MSG_NOSIGNAL); err != nil {
				break
			}
		}
		unix.Close(fd)
	}
}

func recvFD(fd int, buf, oob []byte) (int, error) {
	_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("no descriptor: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("not one descriptor: %v", err)
	}
	return fds[0], nil
}

// lookup connects to the broker, hands it one end of a new pair, and
// returns the other.
func lookup(path string) (int, error) {
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(p[1])
	b, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unix.Close(p[0])
		return -1, err
	}
	defer unix.Close(b)
	if err := unix.Connect(b, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(p[0])
		return -1, err
	}
	if err := unix.Sendmsg(b, []byte("lookup"), unix.UnixRights(p[1]), nil, unix.MSG_NOSIGNAL); err != nil {
		unix.Close(p[0])
		return -1, err
	}
	return p[0], nil
}

func client(path string, n int) error {
	req, buf := make([]byte, 100), make([]byte, 4096)
	call := func(fd int) error {
		if err := unix.Send(fd, req, unix.MSG_NOSIGNAL); err != nil {
			return err
		}
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if err == nil && m != len(req) {
			err = fmt.Errorf("echo of %d bytes", m)
		}
		return err
	}
	fd, err := lookup(path)
	if err != nil {
		return err
	}
	rts := make([]time.Duration, n)
	for i := range rts {
		t := time.Now()
		if err := call(fd); err != nil {
			return err
		}
		rts[i] = time.Since(t)
	}
	unix.Close(fd)
	cons := make([]time.Duration, n)
	for i := range cons {
		t := time.Now()
		fd, err := lookup(path)
		if err == nil {
			err = call(fd)
			cons[i] = time.Since(t)
			unix.Close(fd)
		}
		if err != nil {
			return err
		}
	}
	slices.Sort(rts)
	slices.Sort(cons)
	pct := func(d []time.Duration, p int) int64 { return int64(d[(len(d)-1)*p/100]) }
	return json.NewEncoder(os.Stdout).Encode(Result{
		ConnectP50: pct(cons, 50), ConnectP99: pct(cons, 99),
		RoundtripP50: pct(rts, 50), RoundtripP99: pct(rts, 99),
	})
}
