package xpcd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
)

// JoinExistingSession. On macOS an XPC service with this key joins the
// security session of the application it runs for: its window server,
// its keychain. On Linux a login session is a set of environment
// variables (the display, the session bus, the runtime directory, the
// agents): an Application service that joins its application's session
// gets those variables, and only those, as the application has them.
// Only Application services join: a User or System instance serves
// applications of many sessions, and a System one runs as another user.
// A set-user-ID application has no session to give (setID).
// The variables are read from /proc/PID/environ with the application's
// own rights (in resolve, with the bundle), once per bootstrap
// connection, and bounded.

const (
	// maxSessionEnviron bounds how much of an application's environment
	// is read for its session's variables.
	maxSessionEnviron = 256 << 10
	// maxSessionValue bounds one variable's value; a longer one is left
	// out.
	maxSessionValue = 4096
)

// isSessionVar reports whether name is one of the variables that make a
// login session, those an Application service that joins its
// application's session is given.
func isSessionVar(name string) bool {
	switch name {
	case "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY",
		"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR",
		"XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_CLASS",
		"XDG_SESSION_DESKTOP", "XDG_CURRENT_DESKTOP", "XDG_SEAT", "XDG_VTNR",
		"DESKTOP_SESSION", "SSH_AUTH_SOCK", "GPG_AGENT_INFO":
		return true
	}
	return false
}

// joinsSession reports whether s gets its application's session.
func joinsSession(s *bundle.Service) bool {
	return s.JoinExistingSession && s.Type == bundle.Application
}

// anyJoinsSession reports whether a service of b joins its application's
// session, so that the application's session must be read.
func anyJoinsSession(b *bundle.Bundle) bool {
	for _, s := range b.Services {
		if joinsSession(s) {
			return true
		}
	}
	return false
}

// setID reports whether p runs set-user-ID (its real uid is not the one
// it connected as, or the kernel started its program with privileges its
// invoker had not: AT_SECURE, which stays set when such a program makes
// its real uid its effective one), or cannot be read: such a process's
// environment is its invoker's, who is not the user its services run as,
// so it has no session to give them.
func setID(p *xpc.Peer) bool {
	ruid, err := realUID(p.PID)
	if err != nil || ruid != p.UID {
		return true
	}
	secure, err := secureExec(p.PID)
	return err != nil || secure
}

// atSecure is the auxiliary vector's AT_SECURE entry (linux/auxvec.h).
const atSecure = 23

// secureExec reports whether process pid's program was started in secure
// mode (AT_SECURE in /proc/PID/auxv): set-user-ID, set-group-ID or with
// file capabilities.
func secureExec(pid int) (bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/auxv")
	if err != nil {
		return false, err
	}
	const w = bits.UintSize / 8
	for ; len(b) >= 2*w; b = b[2*w:] {
		var k, v uint64
		if w == 8 {
			k, v = binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[w:])
		} else {
			k, v = uint64(binary.NativeEndian.Uint32(b)), uint64(binary.NativeEndian.Uint32(b[w:]))
		}
		switch k {
		case 0: // AT_NULL
			return false, nil
		case atSecure:
			return v != 0, nil
		}
	}
	return false, errors.New("/proc/" + strconv.Itoa(pid) + "/auxv: no AT_SECURE")
}

// readSession returns the session variables of process pid's environment
// (the environment it was started with), nil if it has none or cannot be
// read. A value longer than maxSessionValue or not UTF-8, and anything
// past maxSessionEnviron, is left out. Run with the process's user's
// rights.
func readSession(pid int) map[string]string {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.LimitReader(f, maxSessionEnviron), 64+maxSessionValue)
	var vars map[string]string
	for {
		kv, err := r.ReadSlice(0)
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice(0) // the rest of a long variable
			}
			if err != nil {
				return vars
			}
			continue
		}
		if err != nil {
			// The end, or a variable cut short by the bound.
			return vars
		}
		k, v, ok := bytes.Cut(kv[:len(kv)-1], []byte{'='})
		if !ok || !isSessionVar(string(k)) || len(v) > maxSessionValue || !utf8.Valid(v) {
			continue
		}
		if vars == nil {
			vars = map[string]string{}
		}
		if _, dup := vars[string(k)]; !dup {
			vars[string(k)] = string(v) // the first, as getenv finds
		}
	}
}
