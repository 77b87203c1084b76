package xpcd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// boundSocket makes a socket of type typ bound to path with mode, as
// systemd's socket activation would pass it, listening if listen.
func boundSocket(t *testing.T, path string, typ int, mode os.FileMode, listen bool) *os.File {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "LISTEN_FD_3")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if listen {
		if err := unix.Listen(fd, 64); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// A socket passed in (Config.Listener) is served in place of one xpcd
// makes; xpcd leaves it where it is when it stops, and the next xpcd
// serves it again and adopts the services the first one started.
func TestPassedListener(t *testing.T) {
	h := newHarness(t)
	h.cfg.Listener = boundSocket(t, h.paths.Socket, unix.SOCK_SEQPACKET, 0o600, true)
	h.cfg.StopServicesOnClose = false
	h.writePlist(testJob{label: "test.passed", names: []string{"test.passed.svc"}})
	d := h.start()
	pid := h.lookupPing("test.passed.svc")
	h.close(d)
	if st, err := os.Stat(h.paths.Socket); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("after Close, the passed socket: %v", err)
	}
	h.cfg.StopServicesOnClose = true
	h.start()
	if got := h.lookupPing("test.passed.svc"); got != pid {
		t.Errorf("after a restart on the same socket, pid %d, want %d (adopted)", got, pid)
	}
}

// A passed socket that is not a listening AF_UNIX SOCK_SEQPACKET socket at
// the instance's path, or that is open to others, is refused before
// anything else starts, and left where it is.
func TestPassedListenerRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		typ    int
		mode   os.FileMode
		listen bool
		other  bool // bound to another path
	}{
		{"stream", unix.SOCK_STREAM, 0o600, true, false},
		{"datagram", unix.SOCK_DGRAM, 0o600, false, false},
		{"not listening", unix.SOCK_SEQPACKET, 0o600, false, false},
		{"another path", unix.SOCK_SEQPACKET, 0o600, true, true},
		{"open to others", unix.SOCK_SEQPACKET, 0o666, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			path := h.paths.Socket
			if tc.other {
				path = filepath.Join(h.dir, "other.sock")
			}
			h.cfg.Listener = boundSocket(t, path, tc.typ, tc.mode, tc.listen)
			d, err := New(h.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = d.Start(testCtx(t))
			if !errors.Is(err, ErrPassedSocket) {
				d.Close(testCtx(t))
				t.Fatalf("Start: %v, want ErrPassedSocket", err)
			}
			t.Log(err)
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the passed socket was removed: %v", err)
			}
			if _, err := os.Stat(filepath.Join(h.paths.StateDir, "processes.json")); err == nil {
				t.Errorf("state written although the socket was refused")
			}
		})
	}
}
