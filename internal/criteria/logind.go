package criteria

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

const (
	sourceLogind = "logind"
	maxSessions  = 256 // sessions of a uid (or of the machine) looked at
)

// session is one entry of logind's ListSessions.
type session struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

// readSessions answers ScreenLocked or UserIdle for uid's sessions (all
// sessions for AnyUser), from logind. Only sessions of class "user" count
// (not greeters, lock screens, cron's background sessions or the user's
// service manager; "user-early", "user-incomplete" and "user-light"
// count too), and for ScreenLocked only graphical ones (x11,
// wayland, mir): a text session has no screen to lock. The condition
// holds when every session that counts has the hint; with no such
// session it holds too: no one uses the screen.
func (l *Linux) readSessions(ctx context.Context, c Condition, uid uint32) Fact {
	f := Fact{Source: sourceLogind}
	call, err := l.busCall(ctx, sourceLogind, login1, login1Path, login1+".Manager.ListSessions")
	if err != nil {
		f.Why = err.Error()
		return f
	}
	var list []session
	if err := call.Store(&list); err != nil {
		f.Why = "ListSessions: " + err.Error()
		return f
	}
	hint, graphical := "IdleHint", false
	if c == ScreenLocked {
		hint, graphical = "LockedHint", true
	}
	counted, lacking := 0, []string(nil)
	for _, s := range list {
		if uid != AnyUser && s.UID != uid {
			continue
		}
		if counted == maxSessions {
			f.Why = fmt.Sprintf("more than %d sessions", maxSessions)
			return f
		}
		has, counts, why := l.sessionHint(ctx, s, hint, graphical)
		if why != "" {
			f.Why = why
			return f
		}
		if !counts {
			continue
		}
		counted++
		if !has && len(lacking) < maxReported {
			lacking = append(lacking, s.ID)
		}
	}
	f.Known = true
	f.Value = len(lacking) == 0
	f.Why = describeSessions(c, uid, counted, graphical, lacking)
	return f
}

// sessionHint reads hint of session s; counts says whether s counts
// (its class, and type when graphical). why is set when it could not be
// read. A session gone since ListSessions does not count.
func (l *Linux) sessionHint(ctx context.Context, s session, hint string, graphical bool) (has, counts bool, why string) {
	call, err := l.busCall(ctx, sourceLogind, login1, s.Path, propsIface+".GetAll", login1+".Session")
	var derr dbus.Error
	if errors.As(err, &derr) {
		switch derr.Name {
		case "org.freedesktop.DBus.Error.UnknownObject", login1 + ".NoSuchSession":
			return false, false, ""
		}
	}
	if err != nil {
		return false, false, "session " + s.ID + ": " + err.Error()
	}
	var props map[string]dbus.Variant
	if err := call.Store(&props); err != nil {
		return false, false, "session " + s.ID + ": " + err.Error()
	}
	class, _ := props["Class"].Value().(string)
	kind, _ := props["Type"].Value().(string)
	if !strings.HasPrefix(class, "user") || graphical && kind != "x11" && kind != "wayland" && kind != "mir" {
		return false, false, ""
	}
	v, ok := props[hint].Value().(bool)
	if !ok {
		return false, false, "session " + s.ID + ": no boolean " + hint
	}
	return v, true, ""
}

// describeSessions says why readSessions answered as it did.
func describeSessions(c Condition, uid uint32, counted int, graphical bool, lacking []string) string {
	whose := fmt.Sprintf("of uid %d", uid)
	if uid == AnyUser {
		whose = "of any user"
	}
	kind := "session"
	if graphical {
		kind = "graphical session"
	}
	state := "idle"
	if c == ScreenLocked {
		state = "locked"
	}
	switch {
	case counted == 0:
		return "no " + kind + " " + whose
	case len(lacking) > 0:
		return fmt.Sprintf("%s %s not %s", kind, strings.Join(lacking, ", "), state)
	}
	return fmt.Sprintf("all %d %ss %s %s", counted, kind, whose, state)
}
