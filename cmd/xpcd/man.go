package main

import (
	"bytes"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/goxpc/xpc/cmd/internal/manfile"
)

// longHelp is xpcd --help's description.
const longHelp = `xpcd is goxpc's bootstrap server and service manager, launchd's job for XPC
on Linux: it owns service names, launches a job's service when a client looks
one of its names up, hands each client's connection to the service and
supervises it. Jobs are launchd property lists.

Exactly one of --system and --user names the instance: --system (as root)
serves the system domain from /etc/xpc/LaunchDaemons and every user's domain
from /etc/xpc/LaunchAgents, on /run/xpc/bootstrap.sock; --user serves your
domain from $XDG_CONFIG_HOME/xpc/LaunchAgents, on
$XDG_RUNTIME_DIR/xpc/bootstrap.sock. --root DIR (or XPCD_ROOT=DIR) puts a
whole private instance under DIR.

xpcctl talks to it. On SIGTERM or SIGINT xpcd stops and leaves the services
running; the next xpcd adopts them.`

// manSections are the manual page's sections after the description.
const manSections = `

# FILES
**/run/xpc/bootstrap.sock**
: the system instance's bootstrap socket (mode 0666); a user's is
**$XDG_RUNTIME_DIR/xpc/bootstrap.sock** (0600), a private instance's **DIR/run/bootstrap.sock**.

**/etc/xpc/LaunchDaemons**, **/etc/xpc/LaunchAgents**
: the system domain's jobs, and every user's; a user's own are in **$XDG_CONFIG_HOME/xpc/LaunchAgents**.

**/var/lib/xpc**
: the system instance's state: overrides, the processes it runs, activities, the jobs' logs;
a user's is **$XDG_STATE_HOME/xpc**.

**/etc/xpc/trust.d**
: the keys that sign the programs jobs may require.

# SIGNALS
**SIGTERM**, **SIGINT**
: shut down cleanly; the services keep running and the next xpcd adopts them.

**SIGHUP**, **SIGPIPE**
: ignored.

# ENVIRONMENT
**XPCD_ROOT**
: put a whole private instance under this directory, as --root does.

**XDG_RUNTIME_DIR**, **XDG_CONFIG_HOME**, **XDG_STATE_HOME**
: where a --user instance keeps its socket, jobs and state.

**GOMAXPROCS**
: the processors xpcd uses; 1 unless set.

**LISTEN_FDS**, **LISTEN_PID**
: socket activation: the bootstrap socket systemd passes (one listening AF_UNIX SOCK_SEQPACKET
socket bound to the instance's path) is served instead of one xpcd makes, and never removed.

**NOTIFY_SOCKET**, **WATCHDOG_USEC**, **WATCHDOG_PID**
: xpcd tells systemd READY=1 and STOPPING=1, and pings the watchdog at half its interval
while its supervisor loop answers.

# EXIT STATUS
**0** after a clean shutdown (and for --help, --version); **1** if xpcd could not start or did
not shut down cleanly; **2** for a usage error, and when no flag is given.

# SEE ALSO
**xpcctl**(1), **systemd.socket**(5), **launchd.plist**(5)
`

// genMan writes xpcd.8 into dir: cobra's page, whose description is
// longHelp followed by manSections, with its OPTIONS moved before FILES,
// where a manual page has them.
func genMan(cmd *cobra.Command, dir string) error {
	cmd.Long = longHelp + manSections
	defer func() { cmd.Long = longHelp }()
	cmd.DisableAutoGenTag = true
	var b bytes.Buffer
	if err := doc.GenMan(cmd, &doc.GenManHeader{Title: "XPCD", Section: "8", Source: "goxpc", Manual: "System Manager's Manual"}, &b); err != nil {
		return err
	}
	return manfile.Write(dir, "xpcd.8", optionsFirst(b.Bytes()))
}

// optionsFirst moves page's OPTIONS section before its FILES section.
func optionsFirst(page []byte) []byte {
	files := bytes.Index(page, []byte("\n.SH FILES\n"))
	opts := bytes.Index(page, []byte("\n.SH OPTIONS\n"))
	if files < 0 || opts < files {
		return page
	}
	end := len(page)
	if next := bytes.Index(page[opts+1:], []byte("\n.SH ")); next >= 0 {
		end = opts + 1 + next
	}
	out := make([]byte, 0, len(page))
	out = append(out, page[:files]...)
	out = append(out, page[opts:end]...)
	out = append(out, page[files:opts]...)
	return append(out, page[end:]...)
}
