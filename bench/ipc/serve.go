package ipc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/goxpc/xpc"
)

// ServeMain is the server child: `EXE serve SYSTEM [-dir DIR] [-bus ADDR]`,
// started by Run with the control socket on descriptor 3. It starts the
// system's server, reports ready, then answers the runner's requests until
// told to quit or until the runner goes away. It returns the exit status.
//
// `EXE serve goxpc-idle-client` is the client side of the idle-connection
// measurement instead, given a goxpc endpoint on descriptor 4: it opens
// connections when told to and holds them.
func ServeMain(args []string) int {
	if err := serve(args); err != nil {
		fmt.Fprintln(os.Stderr, "ipcbench serve:", err)
		return 1
	}
	return 0
}

func serve(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: serve SYSTEM [-dir DIR] [-bus ADDR]")
	}
	system := args[0]
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := fs.String("dir", os.TempDir(), "directory for socket files")
	bus := fs.String("bus", "", "D-Bus address (dbus-daemon)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c, err := newCtl(os.NewFile(ctlFD, "ctl"))
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := raiseNoFile(noFileLimit); err != nil {
		return err
	}

	rd := ready{PID: os.Getpid(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	var fds []int
	var idle *idleClient
	var stop func()
	if system == sysIdleClient {
		idle = &idleClient{ep: endpointFromFD(idleEndpointFD)}
		stop = idle.close
	} else {
		stop, err = startServer(system, *dir, *bus, &rd, &fds)
	}
	if err != nil {
		rd.Err = err.Error()
		c.send(rd)
		return err
	}
	defer stop()
	err = c.send(rd, fds...)
	closeFDs(fds)
	if err != nil {
		return err
	}

	var prof *os.File
	defer func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
	}()
	for {
		var req request
		if _, err := c.recv(&req); err != nil {
			return nil // the runner is gone
		}
		var rep reply
		switch req.Cmd {
		case "stats":
			st, err := readStats(req.GC)
			if err != nil {
				rep.Err = err.Error()
			}
			rep.Stats = &st
		case "profile":
			if prof != nil {
				pprof.StopCPUProfile()
				prof.Close()
				prof = nil
			}
			if req.File != "" {
				f, err := os.Create(req.File)
				if err == nil {
					err = pprof.StartCPUProfile(f)
					if err != nil {
						f.Close()
					} else {
						prof = f
					}
				}
				if err != nil {
					rep.Err = err.Error()
				}
			}
		case "open":
			if idle == nil {
				rep.Err = "open: not an idle client"
				break
			}
			t := time.Now()
			if err := idle.open(req.N); err != nil {
				rep.Err = err.Error()
			}
			rep.Seconds = time.Since(t).Seconds()
		case "quit":
			return c.send(rep)
		default:
			rep.Err = fmt.Sprintf("unknown command %q", req.Cmd)
		}
		if err := c.send(rep); err != nil {
			return err
		}
	}
}

// startServer starts one system's server in this process and fills in
// where to reach it.
func startServer(system, dir, bus string, rd *ready, fds *[]int) (stop func(), err error) {
	switch system {
	case sysGoxpc:
		l, ep, err := serveGoxpc()
		if err != nil {
			return nil, err
		}
		// The endpoint is sent on the control socket, then closed by
		// the caller; the listener keeps its own end.
		fd, err := dupCloexec(ep.File())
		ep.Close()
		if err != nil {
			l.Cancel()
			return nil, err
		}
		*fds = append(*fds, fd)
		return l.Cancel, nil
	case sysRaw:
		p, s, stop, err := serveRaw(dir)
		rd.Addr, rd.Addr2 = p, s
		return stop, err
	case sysRawHandoff, sysRawNoSched, sysRawEpoll, sysRawStream:
		serve := map[string]func(string) (string, func(), error){
			sysRawHandoff: serveRawHandoff, sysRawNoSched: serveRawNoSched, sysRawEpoll: serveRawEpoll,
			sysRawStream: serveRawStream,
		}[system]
		p, stop, err := serve(dir)
		rd.Addr = p
		return stop, err
	case sysDBus:
		conn, err := serveDBus(bus)
		if err != nil {
			return nil, err
		}
		rd.Addr = bus
		return func() { conn.Close() }, nil
	case sysGRPC:
		p, stop, err := serveGRPC(dir)
		rd.Addr = p
		return stop, err
	case sysTTRPC:
		p, stop, err := serveTTRPC(dir)
		rd.Addr = p
		return stop, err
	}
	return nil, fmt.Errorf("unknown system %q", system)
}

// sysIdleClient is the child that holds the client ends of idle goxpc
// connections; idleEndpointFD is where it finds the server's endpoint.
const (
	sysIdleClient  = "goxpc-idle-client"
	idleEndpointFD = 4
)

// idleClient opens goxpc connections and keeps them, idle.
type idleClient struct {
	ep    *xpc.Endpoint
	conns []*goxpcCaller
}

// open opens n more connections, making one round trip on each so that it
// is established at both ends.
func (c *idleClient) open(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := range n {
		g, err := dialGoxpc(c.ep)
		if err != nil {
			return err
		}
		c.conns = append(c.conns, g)
		if err := g.call(ctx, int64(i)); err != nil {
			return fmt.Errorf("connection %d: %w", len(c.conns), err)
		}
	}
	return nil
}

func (c *idleClient) close() {
	for _, g := range c.conns {
		g.c.Cancel()
	}
	for _, g := range c.conns {
		<-g.c.Done()
	}
	c.ep.Close()
}
