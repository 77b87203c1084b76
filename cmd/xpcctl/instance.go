package main

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/spf13/cobra"
)

// instance is the xpcd a command talks to, as the global flags --system
// and --user choose it.
type instance int

const (
	// anyInstance: XPCD_ROOT's, or else the user's and then the
	// system's, the first that answers.
	anyInstance instance = iota
	systemInstance
	userInstance
)

// instanceHelp is the line every command's help and the usage give of the
// instance xpcctl talks to.
const instanceHelp = `Talks to the xpcd that XPCD_ROOT selects, or else the user's and then the
system's (the system's alone for the system domain or another user's);
--system talks to the system instance only, --user to the user's (with
XPCD_ROOT, that instance's).`

// addInstanceFlags declares the global --system and --user on root.
func addInstanceFlags(root *cobra.Command) {
	root.PersistentFlags().Bool("system", false, "talk to the system instance of xpcd only")
	root.PersistentFlags().Bool("user", false, "talk to your user instance of xpcd only")
}

// chosenInstance is the instance cc's global flags choose; both at once
// is a usage error.
func chosenInstance(cc *cobra.Command) (instance, error) {
	system, _ := cc.Flags().GetBool("system")
	user, _ := cc.Flags().GetBool("user")
	switch {
	case system && user:
		return anyInstance, errors.New("--system and --user: give one or the other")
	case system:
		return systemInstance, nil
	case user:
		return userInstance, nil
	}
	return anyInstance, nil
}

// sockets are the bootstrap sockets to try, in order.
func (i instance) sockets() []string {
	if root := os.Getenv(bootstrap.RootEnv); root != "" {
		return []string{bootstrap.ForRoot(root, i == userInstance).Socket}
	}
	switch i {
	case systemInstance:
		return []string{bootstrap.System().Socket}
	case userInstance:
		return []string{bootstrap.User().Socket}
	}
	return bootstrap.ClientSockets()
}

// forTarget is the instance a request naming target (a domain, or
// DOMAIN/LABEL) goes to. With no --system, --user or XPCD_ROOT, a domain
// a user's instance never serves (system, or another user's) goes to the
// system instance, as launchctl print system needs no flag; otherwise i.
func (i instance) forTarget(target string) instance {
	if i != anyInstance || target == "" || os.Getenv(bootstrap.RootEnv) != "" {
		return i
	}
	if target == "system" || strings.HasPrefix(target, "system/") {
		return systemInstance
	}
	kind, rest, _ := strings.Cut(target, "/")
	if kind != "user" && kind != "gui" {
		return i
	}
	uid, _, _ := strings.Cut(rest, "/")
	if n, err := strconv.ParseUint(uid, 10, 32); err == nil && n != uint64(os.Geteuid()) {
		return systemInstance
	}
	return i
}

// forRequest is the instance req goes to: forTarget of the domain or
// target it names.
func (i instance) forRequest(req *xpc.Dictionary) instance {
	t, _ := req.String(bootstrap.KeyTarget)
	if t == "" {
		t, _ = req.String(bootstrap.KeyDomain)
	}
	return i.forTarget(t)
}

// options are the library options that make a lookup or a Notifier use
// the instance: none for anyInstance, whose sockets are the library's own.
func (i instance) options() []xpc.Option {
	if i == anyInstance {
		return nil
	}
	return []xpc.Option{xpc.WithBootstrapSocket(i.sockets()[0])}
}
