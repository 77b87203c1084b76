package uevent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// kernelGroup is the multicast group the kernel broadcasts uevents to
// (udev rebroadcasts to group 2).
const kernelGroup = 1

// rcvBuf is the socket's receive buffer: a burst of events (a device with
// many children plugged in) fits without loss.
const rcvBuf = 1 << 20

// Listener is a NETLINK_KOBJECT_UEVENT socket bound to the kernel's group.
type Listener struct {
	f   *os.File
	buf []byte
	// Lost counts the events the kernel could not queue for us (the
	// receive buffer overflowed), and Dropped the messages read but not
	// taken (not the kernel's, malformed, too large).
	Lost, Dropped uint64
}

// Listen opens a socket receiving the kernel's uevents.
func Listen() (*Listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent: socket: %w", err)
	}
	// As root, past rmem_max; otherwise as much as it allows.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent: bind: %w", err)
	}
	// Non-blocking, so that os.File reads through the poller.
	return &Listener{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, MaxMessage+1)}, nil
}

// Close releases the socket; a Read under way returns.
func (l *Listener) Close() error { return l.f.Close() }

// Read returns the next event from the kernel, waiting until ctx ends.
// Only one Read may run at a time.
func (l *Listener) Read(ctx context.Context) (*Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A deadline left by an earlier Read whose context ended goes.
	_ = l.f.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = l.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, _, from, rerr = unix.Recvmsg(int(fd), l.buf, nil, unix.MSG_TRUNC)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("uevent: read: %w", err)
		}
		switch {
		case errors.Is(rerr, unix.ENOBUFS):
			l.Lost++
			continue
		case rerr != nil:
			return nil, fmt.Errorf("uevent: read: %w", rerr)
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 || n > MaxMessage {
			l.Dropped++ // not the kernel's (udev, a process), or too large
			continue
		}
		ev, err := Parse(l.buf[:n])
		if err != nil {
			l.Dropped++
			continue
		}
		return ev, nil
	}
}

// Run listens and hands each kernel event to fn, on the caller's
// goroutine, until ctx ends (it then returns nil) or the socket fails.
func Run(ctx context.Context, fn func(*Event)) error {
	l, err := Listen()
	if err != nil {
		return err
	}
	defer l.Close()
	for {
		ev, err := l.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fn(ev)
	}
}
