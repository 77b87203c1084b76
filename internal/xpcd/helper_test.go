package xpcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// The test binary, re-executed, is the service the integration tests run
// (go-plugin's helperProcess). Until the root package's runtime (xpc.CheckIn)
// is there, the service side of the check-in protocol is written out here.
//
// Environment (set through the plist's EnvironmentVariables):
//
//	XPCD_TEST_HELPER=1        be the service
//	XPCD_TEST_NAMES=a,b       check these names in at start
//	XPCD_TEST_EXIT=N          exit with status N at once (before checking in)
//	XPCD_TEST_HOLD=1          hold a transaction open from the start
//	XPCD_TEST_RUNTIME=1       use the library's runtime (xpc.CheckIn) instead
//	XPCD_TEST_MUTE_TERM=1     ignore terminate (no answer, no exit): only
//	                          SIGTERM, Go's default, ends it
//
// Requests on a client connection ({"cmd": ...}):
//
//	ping            -> {"pid": PID, "name": NAME}
//	crash           the process kills itself with SIGSEGV (a crash)
//	exit            exit with status 0
//	begin / end     open / close a transaction held across requests
//	checkin NAME    check another name in -> {} or {"error": description, "reason": reason}
//	env KEY         -> {"value": $KEY}
//	uid             -> {"uid": UID}
//	lookup NAME     ping NAME at $XPCD_APP_SOCK -> {"pid": ITS PID} or {"error": ...}
//	sched           -> {"umask", "nice", "ioprio_class", "argv0"}
//
// The service reports its transaction count on its channel, as the
// runtime will. When its channel ends (xpcd restarted), it adopts a new
// one through the bootstrap socket, retrying for ten seconds, and exits if
// it cannot. It also exits when its parent (the test) goes.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("XPCD_TEST_HELPER") != "1" {
		t.Skip("not a test: the service the other tests launch")
	}
	os.Exit(helperMain())
}

type helper struct {
	names []string
	tx    xpc.Transactions
	label string

	rt *xpc.Service // with XPCD_TEST_RUNTIME

	mu   sync.Mutex
	ch   *xpc.Connection
	held []func()
}

func helperMain() int {
	if v := os.Getenv("XPCD_TEST_EXIT"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		return n
	}
	fmt.Println("helper starting") // goes to xpcd's log
	h := &helper{label: os.Getenv(bootstrap.LabelEnv)}
	if v := os.Getenv("XPCD_TEST_NAMES"); v != "" {
		h.names = strings.Split(v, ",")
	}
	if os.Getenv("XPCD_TEST_RUNTIME") == "1" {
		return h.runtimeMain()
	}
	ppid := os.Getppid()
	f := os.NewFile(3, "checkin")
	c, err := xpc.NewConnectionFromFile(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: check-in channel:", err)
		return 10
	}
	lost := make(chan struct{}, 1)
	h.useChannel(c, lost)
	if os.Getenv("XPCD_TEST_HOLD") == "1" {
		// Dirty from the start: say so before checking in.
		h.held = append(h.held, h.tx.Begin())
		h.sendCount()
	}
	for _, n := range h.names {
		if err := h.checkin(c, n); err != nil {
			fmt.Fprintln(os.Stderr, "helper: checkin:", err)
			return 11
		}
	}
	go h.reportTransactions()
	tick := time.NewTicker(100 * time.Millisecond)
	for {
		select {
		case <-lost:
			if !h.readopt(lost) {
				return 12
			}
		case <-tick.C:
			if os.Getppid() != ppid {
				return 13 // the test is gone
			}
		}
	}
}

func (h *helper) useChannel(c *xpc.Connection, lost chan struct{}) {
	c.SetHandler(channelHandler{h: h, lost: lost})
	c.Activate()
	h.mu.Lock()
	h.ch = c
	h.mu.Unlock()
}

func (h *helper) checkin(c *xpc.Connection, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpCheckin, bootstrap.KeyName, name))
	return err
}

func (h *helper) readopt(lost chan struct{}) bool {
	sock := bootstrap.ForRoot(os.Getenv(bootstrap.RootEnv), false).Socket
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := xpc.DialUnix(ctx, sock)
		if err != nil {
			cancel()
			continue
		}
		h.useChannel(c, lost)
		_, err = c.SendWithReply(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpAdopt, bootstrap.KeyLabel, h.label))
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper: adopt:", err)
			c.Cancel()
			<-lost // the cancelled connection's end
			continue
		}
		for _, n := range h.names {
			if err := h.checkin(c, n); err != nil {
				fmt.Fprintln(os.Stderr, "helper: checkin after adopt:", err)
			}
		}
		h.sendCount()
		return true
	}
	return false
}

func (h *helper) reportTransactions() {
	for {
		changed := h.tx.Changed()
		h.sendCount()
		<-changed
	}
}

func (h *helper) sendCount() {
	h.mu.Lock()
	c := h.ch
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Send(ctx, xpc.Dict(bootstrap.KeyOp, bootstrap.OpTransactions, bootstrap.KeyCount, h.tx.Count()))
}

type channelHandler struct {
	h    *helper
	lost chan struct{}
}

func (ch channelHandler) HandleMessage(ctx context.Context, m *xpc.Message) {
	op, _ := m.Body.String(bootstrap.KeyOp)
	switch op {
	case bootstrap.OpConnect:
		fd, ok := m.Body.Get(bootstrap.KeySocket).(*xpc.FD)
		if !ok {
			return
		}
		name, _ := m.Body.String(bootstrap.KeyName)
		c, err := xpc.NewConnectionFromFile(fd.File(), xpc.WithTransactions(&ch.h.tx))
		fd.Close()
		if err != nil {
			return
		}
		c.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) { ch.h.serve(ctx, name, m) }))
		c.Activate()
	case bootstrap.OpTerminate:
		if os.Getenv("XPCD_TEST_MUTE_TERM") == "1" {
			m.Defer() // a service that hangs: never answered
			return
		}
		os.Exit(0)
	}
}

func (ch channelHandler) HandleEvent(err error) {
	if errors.Is(err, xpc.ErrInvalid) {
		ch.lost <- struct{}{}
	}
}

func (h *helper) serve(ctx context.Context, name string, m *xpc.Message) {
	cmd, _ := m.Body.String("cmd")
	switch cmd {
	case "ping":
		m.Reply(ctx, xpc.Dict("pid", os.Getpid(), "name", name))
	case "sched":
		mask := syscall.Umask(0)
		syscall.Umask(mask)
		prio, _ := unix.Getpriority(unix.PRIO_PROCESS, 0)
		io, _, _ := unix.Syscall(unix.SYS_IOPRIO_GET, 1, 0, 0)
		// getpriority(2) returns 20 - nice.
		nices, classes := threadPriorities()
		m.Reply(ctx, xpc.Dict("umask", int64(mask), "nice", int64(20-prio),
			"ioprio_class", int64(io>>13), "argv0", os.Args[0],
			"thread_nice", nices, "thread_ioprio_class", classes))
	case "crash":
		crash()
	case "exit":
		os.Exit(0)
	case "begin":
		tx := &h.tx
		if h.rt != nil {
			tx = h.rt.Transactions()
		}
		end := tx.Begin()
		h.mu.Lock()
		h.held = append(h.held, end)
		h.mu.Unlock()
		m.Reply(ctx, xpc.Dict())
	case "end":
		h.mu.Lock()
		held := h.held
		h.held = nil
		h.mu.Unlock()
		for _, end := range held {
			end()
		}
		m.Reply(ctx, xpc.Dict())
	case "checkin":
		n, _ := m.Body.String("name")
		h.mu.Lock()
		c := h.ch
		h.mu.Unlock()
		if err := h.checkin(c, n); err != nil {
			reply := xpc.Dict("error", err.Error())
			if re, ok := err.(*xpc.RemoteError); ok {
				if r, ok := re.Object.Get(bootstrap.KeyReason).(xpc.String); ok {
					reply.Set("reason", r)
				}
			}
			m.Reply(ctx, reply)
			return
		}
		m.Reply(ctx, xpc.Dict())
	case "uid":
		m.Reply(ctx, xpc.Dict("uid", os.Getuid()))
	case "lookup":
		// Ping a sibling service (apps_e2e_test.go).
		n, _ := m.Body.String("name")
		pid, err := pingService(ctx, os.Getenv("XPCD_APP_SOCK"), n)
		if err != nil {
			m.Reply(ctx, xpc.Dict("error", err.Error()))
			return
		}
		m.Reply(ctx, xpc.Dict("pid", pid))
	case "env":
		k, _ := m.Body.String("key")
		m.Reply(ctx, xpc.Dict("value", os.Getenv(k)))
	}
}

// crash dies of SIGSEGV, as a crashing C program would: Go's own handler
// is replaced by the default action, and no core is dumped.
func crash() {
	defaultSIGSEGV()
	syscall.Kill(os.Getpid(), syscall.SIGSEGV)
	time.Sleep(time.Second)
	os.Exit(99)
}

// defaultSIGSEGV makes a SIGSEGV end the process as it would a C
// program's: Go's own handler is replaced by the default action, and no
// core is dumped.
func defaultSIGSEGV() {
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	var act [4]uint64 // struct sigaction, all zero: SIG_DFL
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGSEGV), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}

// runtimeMain is the service written with the library's runtime, as users
// write theirs.
func (h *helper) runtimeMain() int {
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: CheckIn:", err)
		return 20
	}
	h.rt = svc
	for _, name := range h.names {
		l, err := svc.Listen(ctx, name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper: Listen:", err)
			return 21
		}
		l.SetHandler(func(peer *xpc.Connection) {
			peer.SetHandler(xpc.HandlerFunc(func(ctx context.Context, m *xpc.Message) { h.serve(ctx, name, m) }))
			peer.Activate()
		})
		l.Activate()
	}
	ppid := os.Getppid()
	tick := time.NewTicker(100 * time.Millisecond)
	for {
		select {
		case <-svc.Terminating():
			return 0
		case <-tick.C:
			if os.Getppid() != ppid {
				return 13
			}
		}
	}
}

// threadPriorities returns the nice value and I/O class of each of the
// process's threads: Linux keeps both per thread. A thread whose values
// cannot be read is reported with nice -100 and class -1.
func threadPriorities() (nices, classes []int64) {
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		nice := int64(-100)
		if b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat"); err == nil {
			// Fields after the command name, which is in parentheses:
			// f[0] is field 3, the nice value field 19.
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			if len(f) > 19-3 {
				if n, err := strconv.ParseInt(f[19-3], 10, 64); err == nil {
					nice = n
				}
			}
		}
		class := int64(-1)
		if io, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, 1, uintptr(tid), 0); errno == 0 {
			class = int64(io >> 13)
		}
		nices, classes = append(nices, nice), append(classes, class)
	}
	return nices, classes
}
