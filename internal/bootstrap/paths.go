package bootstrap

import (
	"os"
	"path/filepath"
	"strconv"
)

// RootEnv names the environment variable that puts a whole private xpcd
// instance under one directory.
const RootEnv = "XPCD_ROOT"

// CheckinFDEnv names the environment variable through which xpcd tells a
// process it launched which descriptor is its check-in channel; LabelEnv
// carries the job's label.
const (
	CheckinFDEnv = "XPCD_CHECKIN_FD"
	LabelEnv     = "XPC_SERVICE_NAME"
)

// Paths are the places one xpcd instance uses.
type Paths struct {
	Root      string // XPCD_ROOT, or "" for the system layout
	RunDir    string // sockets
	Socket    string // the bootstrap socket
	StateDir  string // what persists across restarts
	Agents    string // LaunchAgents: per-user jobs
	Daemons   string // LaunchDaemons: system jobs ("" for a --user instance without XPCD_ROOT)
	UserScope bool   // a --user instance
}

// SocketName is the bootstrap socket's file name inside RunDir.
const SocketName = "bootstrap.sock"

// ForRoot returns the layout of a private instance under root.
func ForRoot(root string, user bool) Paths {
	run := filepath.Join(root, "run")
	return Paths{
		Root: root, RunDir: run, Socket: filepath.Join(run, SocketName),
		StateDir: filepath.Join(root, "state"),
		Agents:   filepath.Join(root, "LaunchAgents"), Daemons: filepath.Join(root, "LaunchDaemons"),
		UserScope: user,
	}
}

// System returns the layout of the system instance.
func System() Paths {
	return Paths{
		RunDir: "/run/xpc", Socket: "/run/xpc/" + SocketName, StateDir: "/var/lib/xpc",
		Agents: "/etc/xpc/LaunchAgents", Daemons: "/etc/xpc/LaunchDaemons",
	}
}

// User returns the layout of a --user instance for the current user, by the
// XDG base directory rules.
func User() Paths {
	home, _ := os.UserHomeDir()
	run := os.Getenv("XDG_RUNTIME_DIR")
	if run == "" {
		run = filepath.Join("/run/user", strconv.Itoa(os.Getuid()))
	}
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" {
		state = filepath.Join(home, ".local", "state")
	}
	config := os.Getenv("XDG_CONFIG_HOME")
	if config == "" {
		config = filepath.Join(home, ".config")
	}
	rundir := filepath.Join(run, "xpc")
	return Paths{
		RunDir: rundir, Socket: filepath.Join(rundir, SocketName),
		StateDir: filepath.Join(state, "xpc"), Agents: filepath.Join(config, "xpc", "LaunchAgents"),
		UserScope: true,
	}
}

// FromEnv returns the layout selected by XPCD_ROOT, or, without it, the
// user or system layout.
func FromEnv(user bool) Paths {
	if root := os.Getenv(RootEnv); root != "" {
		return ForRoot(root, user)
	}
	if user {
		return User()
	}
	return System()
}

// ClientSockets returns the bootstrap sockets a client tries, in order: the
// private instance's under XPCD_ROOT; otherwise the user's own instance,
// then the system's.
func ClientSockets() []string {
	if root := os.Getenv(RootEnv); root != "" {
		return []string{ForRoot(root, false).Socket}
	}
	return []string{User().Socket, System().Socket}
}

// StartHint says how to start the xpcd that would listen on sockets, for
// an error saying that none does: the XPCD_ROOT instance's when sockets is
// its socket alone (it may be a --user or a --system instance, and systemd
// starts neither), the system instance's when sockets is its socket alone,
// a user instance's otherwise.
func StartHint(sockets []string) string {
	if root := os.Getenv(RootEnv); root != "" && len(sockets) == 1 && sockets[0] == ForRoot(root, false).Socket {
		return "start xpcd --user, or xpcd --system as root, with " + RootEnv + "=" + root
	}
	if len(sockets) == 1 && sockets[0] == System().Socket {
		return "start xpcd --system as root, or systemctl start xpcd"
	}
	return "start xpcd --user, or systemctl --user start xpcd"
}
