package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxpc/xpc"
)

// A subscriber of the notify measurement (notify.go): this binary,
// re-executed.

// notifySubEnv makes this binary a subscriber: "xpc SOCKET NAME" (a
// Notifier registered for NAME at the bootstrap socket SOCKET) or "raw"
// (reads states from descriptor 4). Either reports on descriptor 3.
const notifySubEnv = "XPCDBENCH_NOTIFY_SUB"

func init() {
	if v := os.Getenv(notifySubEnv); v != "" {
		if err := notifySub(v); err != nil {
			fmt.Fprintln(os.Stderr, "xpcdbench subscriber:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// notifyReady is the state a subscriber reports once it is registered.
const notifyReady = ^uint64(0)

// monoNow is CLOCK_MONOTONIC, comparable across processes.
func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// report writes one record: the state and when it arrived. 16 bytes, so
// that the pipe's writers never interleave.
func report(w *os.File, state uint64, at int64) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], state)
	binary.LittleEndian.PutUint64(b[8:], uint64(at))
	w.Write(b[:])
}

func notifySub(mode string) error {
	out := os.NewFile(3, "report")
	f := strings.Fields(mode)
	switch {
	case len(f) == 3 && f[0] == "xpc":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := xpc.NewNotifier(ctx, xpc.WithBootstrapSocket(f[1]))
		if err == nil {
			_, err = n.Register(ctx, f[2], func(_ string, state uint64) { report(out, state, monoNow()) })
		}
		cancel()
		if err != nil {
			return err
		}
		report(out, notifyReady, 0)
		select {} // until killed
	case len(f) == 1 && f[0] == "raw":
		report(out, notifyReady, 0)
		var b [8]byte
		for {
			n, err := unix.Read(4, b[:])
			if err != nil || n == 0 {
				return err
			}
			report(out, binary.LittleEndian.Uint64(b[:]), monoNow())
		}
	}
	return fmt.Errorf("bad mode %q", mode)
}
