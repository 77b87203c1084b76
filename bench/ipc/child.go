package ipc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a server process started by the runner.
type child struct {
	system string
	cmd    *exec.Cmd
	ctl    *ctl
	rd     ready
	fds    []int // descriptors that came with ready, owned by the child value
	exited chan error
}

// startChild runs `exe serve system args...` with GOMAXPROCS=procs in its
// environment (procs 0: unset, the runtime's default) and waits for it to
// be ready. extra, if not nil, becomes the child's descriptor 4.
func startChild(exe, system string, procs int, stderr io.Writer, extra *os.File, args ...string) (*child, error) {
	c, f, err := ctlPair()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{"serve", system}, args...)...)
	cmd.Env = childEnv(procs)
	cmd.ExtraFiles = []*os.File{f} // descriptor 3
	if extra != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, extra)
	}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	err = cmd.Start()
	f.Close()
	if err != nil {
		c.close()
		return nil, err
	}
	ch := &child{system: system, cmd: cmd, ctl: c, exited: make(chan error, 1)}
	go func() { ch.exited <- cmd.Wait() }()
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	fds, err := c.recv(&ch.rd)
	c.c.SetReadDeadline(time.Time{})
	ch.fds = fds
	if err == nil && ch.rd.Err != "" {
		err = errors.New(ch.rd.Err)
	}
	if err != nil {
		ch.stop()
		return nil, fmt.Errorf("%s server: %w", system, err)
	}
	return ch, nil
}

// childEnv is this process's environment with GOMAXPROCS set to procs, or
// removed for procs 0.
func childEnv(procs int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	if procs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	return env
}

func (c *child) ask(req request) (reply, error) {
	var rep reply
	if err := c.ctl.send(req); err != nil {
		return rep, fmt.Errorf("%s server: %w", c.system, err)
	}
	c.ctl.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	defer c.ctl.c.SetReadDeadline(time.Time{})
	if _, err := c.ctl.recv(&rep); err != nil {
		return rep, fmt.Errorf("%s server: %w", c.system, err)
	}
	if rep.Err != "" {
		return rep, fmt.Errorf("%s server: %s", c.system, rep.Err)
	}
	return rep, nil
}

func (c *child) stats(gc bool) (procStats, error) {
	rep, err := c.ask(request{Cmd: "stats", GC: gc})
	if err != nil {
		return procStats{}, err
	}
	if rep.Stats == nil {
		return procStats{}, fmt.Errorf("%s server: no stats", c.system)
	}
	return *rep.Stats, nil
}

// profile starts a CPU profile into file in the child, or stops it ("").
func (c *child) profile(file string) error {
	_, err := c.ask(request{Cmd: "profile", File: file})
	return err
}

// stop asks the child to quit and waits for it, killing it (by its pid,
// which it still holds: it has not been waited for) after a deadline.
func (c *child) stop() error {
	closeFDs(c.fds)
	c.fds = nil
	c.ctl.send(request{Cmd: "quit"})
	c.ctl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var rep reply
	c.ctl.recv(&rep)
	c.ctl.close()
	select {
	case err := <-c.exited:
		return err
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		return fmt.Errorf("%s server did not exit; killed: %v", c.system, <-c.exited)
	}
}

// dupCloexec duplicates f's descriptor, close-on-exec, leaving f alone.
func dupCloexec(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		nfd, derr = syscall.Dup(int(fd))
		if derr == nil {
			syscall.CloseOnExec(nfd)
		}
		syscall.ForkLock.RUnlock()
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}
