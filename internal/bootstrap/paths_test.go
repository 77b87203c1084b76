package bootstrap

import "testing"

// StartHint names the instance that would listen: XPCD_ROOT's (either
// kind, started by hand), the system's, or the user's.
func TestStartHint(t *testing.T) {
	t.Setenv(RootEnv, "")
	if got, want := StartHint([]string{System().Socket}), "start xpcd --system as root, or systemctl start xpcd"; got != want {
		t.Errorf("system: %q, want %q", got, want)
	}
	if got, want := StartHint([]string{User().Socket, System().Socket}), "start xpcd --user, or systemctl --user start xpcd"; got != want {
		t.Errorf("user then system: %q, want %q", got, want)
	}
	root := t.TempDir()
	t.Setenv(RootEnv, root)
	if got, want := StartHint(ClientSockets()), "start xpcd --user, or xpcd --system as root, with XPCD_ROOT="+root; got != want {
		t.Errorf("XPCD_ROOT: %q, want %q", got, want)
	}
	// A socket named some other way (WithBootstrapSocket) keeps the user hint.
	if got, want := StartHint([]string{root + "/elsewhere.sock"}), "start xpcd --user, or systemctl --user start xpcd"; got != want {
		t.Errorf("another socket: %q, want %q", got, want)
	}
}
