package criteria

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// watchRoutes opens an rtnetlink socket on the groups of route and link
// changes and signals Changed on each message, until Close. Without it
// (the socket cannot be opened) Network is still read, just not signalled.
func (l *Linux) watchRoutes() {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		l.log.Info("criteria: route changes are not watched", "err", os.NewSyscallError("socket", err))
		return
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE | unix.RTMGRP_LINK}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		l.log.Info("criteria: route changes are not watched", "err", os.NewSyscallError("bind", err))
		return
	}
	f := os.NewFile(uintptr(fd), "rtnetlink") // non-blocking: Close ends a Read
	l.routes = f
	l.wg.Add(1)
	go l.readRouteChanges(f)
}

// readRouteChanges signals Changed for each rtnetlink message (or lost
// messages: ENOBUFS) until f is closed.
func (l *Linux) readRouteChanges(f *os.File) {
	defer l.wg.Done()
	buf := make([]byte, os.Getpagesize())
	for {
		_, err := f.Read(buf)
		switch {
		case err == nil, errors.Is(err, unix.ENOBUFS):
			l.notify()
		case errors.Is(err, os.ErrClosed):
			return
		default:
			l.log.Info("criteria: route changes are no longer watched", "err", err)
			return
		}
	}
}
