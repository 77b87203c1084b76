package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/xpctest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cobraOf is the command c is in a tree newRoot built.
func cobraOf(t *testing.T, root *cobra.Command, c *command) *cobra.Command {
	t.Helper()
	cc, _, err := root.Find(strings.Fields(c.name))
	if err != nil || cc.CommandPath() != "xpcctl "+c.name {
		t.Fatalf("%s: not in the tree (%v)", c.name, err)
	}
	return cc
}

// synopsisFlagRE finds the flags a synopsis writes: "--json", "-k|--kill".
var synopsisFlagRE = regexp.MustCompile(`(?:^|[\[ ])(?:-([a-zA-Z])\|)?--([a-z][a-z0-9-]*)`)

// Each flag a command declares is in its synopsis, written "-k|--kill"
// when it has a shorthand, and each flag the synopsis writes is declared
// as it is written; 'help CMD' and 'CMD -h' say the same, and list every
// flag; the usage line of every command's help says one spelling.
func TestSynopsisMatchesFlags(t *testing.T) {
	root := newRoot(context.Background(), stdio{}, new(int))
	for _, c := range commands {
		cc := cobraOf(t, root, c)
		written := map[string]string{} // long name → shorthand written
		for _, m := range synopsisFlagRE.FindAllStringSubmatch(c.args, -1) {
			written[m[2]] = m[1]
		}
		declared := map[string]bool{}
		cc.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			declared[f.Name] = true
			short, ok := written[f.Name]
			switch {
			case !ok:
				t.Errorf("%s: --%s is declared, not in the synopsis %q", c.name, f.Name, c.args)
			case short != f.Shorthand:
				t.Errorf("%s: the synopsis writes --%s with shorthand %q, declared %q", c.name, f.Name, short, f.Shorthand)
			}
		})
		for name := range written {
			if !declared[name] {
				t.Errorf("%s: the synopsis %q writes --%s, which is not declared", c.name, c.args, name)
			}
		}
		// A one-letter flag is only ever a long one's shorthand.
		if m := regexp.MustCompile(`(?:^|[\[ ])-[a-zA-Z](?:[\] ]|$)`).FindString(c.args); m != "" {
			t.Errorf("%s: the synopsis %q writes %q alone", c.name, c.args, m)
		}
		words := strings.Fields(c.name)
		viaHelp := runCmd(t, nil, append([]string{"help"}, words...)...)
		viaFlag := runCmd(t, nil, append(words, "-h")...)
		if viaHelp.stdout != viaFlag.stdout {
			t.Errorf("%s: 'help %s' and '%s -h' differ:\n%s\n---\n%s", c.name, c.name, c.name, viaHelp.stdout, viaFlag.stdout)
		}
		for name := range declared {
			if !strings.Contains(viaHelp.stdout, "--"+name+" ") && !strings.Contains(viaHelp.stdout, "--"+name+"\n") {
				t.Errorf("%s: help lists no --%s:\n%s", c.name, name, viaHelp.stdout)
			}
		}
	}
}

// gen-man writes xpcctl.1 and a page for each command, with its
// description and its options, the global ones too.
func TestGenMan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	if r := runCmd(t, nil, "gen-man", dir); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("gen-man: %+v", r)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Its synopsis is the usage's.
	if top := read("xpcctl.1"); !strings.Contains(top, `.TH "XPCCTL" "1"`) || !strings.Contains(top, "goxpc") ||
		!strings.Contains(top, `\fBxpcctl [--system|--user] <command> [arguments]\fP`) {
		t.Errorf("xpcctl.1:\n%s", top)
	}
	root := newRoot(context.Background(), stdio{}, new(int))
	for _, c := range commands {
		page := "xpcctl-" + strings.ReplaceAll(c.name, " ", "-") + ".1"
		if c.hidden {
			if _, err := os.Stat(filepath.Join(dir, page)); err == nil {
				t.Errorf("hidden %s has a page", c.name)
			}
			continue
		}
		text := read(page)
		// The page's description is the help: its first words are there.
		first := strings.Join(strings.Fields(c.help)[:3], " ")
		if !strings.Contains(strings.Join(strings.Fields(text), " "), first) {
			t.Errorf("%s: no %q in its page", page, first)
		}
		cobraOf(t, root, c).LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(text, "--"+f.Name) && !strings.Contains(text, `\-\-`+f.Name) {
				t.Errorf("%s: no --%s in its page", page, f.Name)
			}
		})
		if !strings.Contains(text, "--system") && !strings.Contains(text, `\-\-system`) {
			t.Errorf("%s: the global options are not in its page", page)
		}
	}
	if r := runCmd(t, nil, "gen-man"); r.code != 2 {
		t.Errorf("gen-man without DIR: %+v", r)
	}
}

// completion prints each shell's script, and cobra's __complete answers
// through run: fixed option values, and the jobs and domains of the xpcd
// that answers, or nothing when none does, never an error.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := runCmd(t, nil, "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "__complete") || r.stderr != "" {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", sh, r.code, len(r.stdout), r.stderr)
		}
	}
	if r := runCmd(t, nil, "completion", "tcsh"); r.code != 2 {
		t.Errorf("completion tcsh: exit %d", r.code)
	}
	complete := func(args ...string) []string {
		t.Helper()
		r := runCmd(t, nil, append([]string{"__complete"}, args...)...)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
			t.Fatalf("__complete %q: %+v", args, r)
		}
		return lines[:len(lines)-1]
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"plist", "convert", "--to", ""}, []string{"xml", "binary", "json", "tagged-json"}},
		{[]string{"encode", "--magic", "r"}, []string{"remote"}},
		{[]string{"completion", "f"}, []string{"fish"}},
		{[]string{"kic"}, []string{"kickstart\tstart a job now (-k|--kill: restart it if it runs)"}},
	} {
		if got := complete(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("__complete %q: %q, want %q", tc.args, got, tc.want)
		}
	}

	// No xpcd: nothing, and nothing said; a DOMAIN is your own or system,
	// where one bootstraps the first job.
	t.Setenv(bootstrap.RootEnv, t.TempDir())
	r := runCmd(t, nil, "__complete", "print", "")
	if r.code != 0 || r.stdout != ":4\n" || strings.Contains(r.stderr, "xpcd") {
		t.Errorf("__complete print with no xpcd: %+v", r)
	}
	own := fmt.Sprintf("user/%d", os.Geteuid())
	if got := complete("bootstrap", ""); !slices.Equal(got, []string{own}) {
		t.Errorf("__complete bootstrap with XPCD_ROOT and no xpcd: %q, want %q", got, own)
	}
	t.Setenv(bootstrap.RootEnv, "")
	os.Unsetenv(bootstrap.RootEnv)
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if got := complete("bootstrap", ""); !slices.Contains(got, own) || !slices.Contains(got, "system") {
		t.Errorf("__complete bootstrap with no user xpcd: %q, want %q and system", got, own)
	}
	if got := complete("--user", "bootstrap", ""); !slices.Equal(got, []string{own}) {
		t.Errorf("__complete --user bootstrap with no xpcd: %q, want %q", got, own)
	}

	s := xpctest.NewServer(t, xpctest.WithPlist("test.comp.plist", xpctest.AgentPlist("test.comp", []string{"/bin/sleep", "60"}, nil, nil)))
	t.Setenv(bootstrap.RootEnv, s.Root)
	dom := fmt.Sprintf("user/%d", os.Geteuid())
	if got := complete("list", ""); !slices.Equal(got, []string{dom}) {
		t.Errorf("__complete list: %q, want %q", got, dom)
	}
	for _, args := range [][]string{{"print", ""}, {"kickstart", "--kill", "user/"}, {"--user", "log", "-n", "3", ""}} {
		if got := complete(args...); !slices.Contains(got, dom+"/test.comp") {
			t.Errorf("__complete %q: %q, want %s/test.comp", args, got, dom)
		}
	}
	if got := complete("print", "system/"); len(got) != 0 {
		t.Errorf("__complete print system/: %q", got)
	}
	if got := complete("kill", "u"); !slices.Equal(got, []string{"USR1", "USR2"}) {
		t.Errorf("__complete kill SIGNAL: %q", got)
	}
	if got := complete("kill", "TERM", ""); !slices.Contains(got, dom+"/test.comp") {
		t.Errorf("__complete kill TERM: %q", got)
	}
	for _, args := range [][]string{{"call", "--domain", ""}, {"plist", "lint", "--domain", "u"}} {
		if got := complete(args...); !slices.Contains(got, dom) {
			t.Errorf("__complete %q: %q, want %s", args, got, dom)
		}
	}
}

// A long flag written with one dash, as xpcctl took them before, is a
// usage error that says how to write it.
func TestOneDashLongFlag(t *testing.T) {
	r := runCmd(t, nil, "list", "-json")
	if r.code != 2 || !strings.Contains(r.stderr, "long flags take two dashes: --json\n") {
		t.Errorf("list -json: %+v", r)
	}
	if r := runCmd(t, nil, "list", "-jx"); r.code != 2 || strings.Contains(r.stderr, "two dashes") {
		t.Errorf("list -jx: %+v", r)
	}
}

// --system and --user choose the instance; both at once is a usage error.
func TestInstanceFlags(t *testing.T) {
	runDir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runDir)
	t.Setenv(bootstrap.RootEnv, "")
	os.Unsetenv(bootstrap.RootEnv)
	user := filepath.Join(runDir, "xpc", bootstrap.SocketName)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--system", "--user", "list"}, 2, "--system and --user: give one or the other"},
		{[]string{"list", "--user", "--system"}, 2, "--system and --user: give one or the other"},
		{[]string{"--user", "list"}, 1, "xpcctl list: no xpcd is running: nothing listens on " + user + "; start xpcd --user"},
		{[]string{"print", "--user", "user/0/x"}, 1, "xpcctl print: user/0/x: no xpcd is running: nothing listens on " + user + ";"},
		{[]string{"call", "--user", "org.x"}, 1, "xpcctl call: org.x: no xpcd is running: nothing listens on " + user + ";"},
		{[]string{"notify", "get", "--user", "org.x"}, 1, "xpcctl notify get: org.x: interrupted: no bootstrap server (xpcd) answers: connect " + user + ":"},
	} {
		r := runCmd(t, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if got := systemInstance.sockets(); !slices.Equal(got, []string{bootstrap.System().Socket}) {
		t.Errorf("--system tries %q", got)
	}
	if got := anyInstance.sockets(); !slices.Equal(got, []string{user, bootstrap.System().Socket}) {
		t.Errorf("no flag tries %q", got)
	}
	// With XPCD_ROOT, the private instance's socket, whichever flag.
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	for _, flag := range []string{"--system", "--user"} {
		if r := runCmd(t, nil, flag, "list"); r.code != 0 {
			t.Errorf("%s list with XPCD_ROOT: %+v", flag, r)
		}
	}
}

// A refusal has one shape whichever verb met it: "xpcctl VERB: SUBJECT:
// REASON: DESCRIPTION", the reason as the protocol spells it.
func TestErrorShape(t *testing.T) {
	s := xpctest.NewServer(t)
	t.Setenv(bootstrap.RootEnv, s.Root)
	dom := fmt.Sprintf("user/%d", os.Geteuid())
	shape := regexp.MustCompile(`^xpcctl ([a-z -]+): (\S+): ([a-z-]+): (.+)\n$`)
	for _, tc := range []struct {
		args    []string
		subject string
	}{
		{[]string{"print", dom + "/test.nojob"}, dom + "/test.nojob"},
		{[]string{"kickstart", "-k", dom + "/test.nojob"}, dom + "/test.nojob"},
		{[]string{"blame", dom + "/test.nojob"}, dom + "/test.nojob"},
		{[]string{"call", "test.nojob.svc"}, "test.nojob.svc"},
	} {
		r := runCmd(t, nil, tc.args...)
		m := shape.FindStringSubmatch(r.stderr)
		if r.code != 1 || m == nil || m[1] != tc.args[0] || m[2] != tc.subject || m[3] != bootstrap.ReasonNotFound {
			t.Errorf("%q: exit %d, stderr %q, want xpcctl %s: %s: %s: ...", tc.args, r.code, r.stderr, tc.args[0], tc.subject, bootstrap.ReasonNotFound)
		}
	}
}

// watch prints a job's state first, then what changed: KEY OLD → NEW.
func TestWatchLines(t *testing.T) {
	at := time.Date(2026, 1, 2, 12, 0, 1, 0, time.Local)
	job := func(kv ...any) *xpc.Dictionary {
		return xpc.Dict(append([]any{bootstrap.KeyLabel, "org.x", bootstrap.KeyDomain, "user/7", "since", xpc.DateOf(at)}, kv...)...)
	}
	var w watchState
	for _, tc := range []struct {
		rec  *xpc.Dictionary
		want string
	}{
		{job(bootstrap.KeyState, "waiting", bootstrap.KeyRuns, int64(0)), "12:00:01.000 user/7/org.x waiting pid=- runs=0"},
		{job(bootstrap.KeyState, "running", bootstrap.KeyRuns, int64(1), bootstrap.KeyPID, int64(42), bootstrap.KeyLaunchReason, "demand"),
			"12:00:01.000 user/7/org.x: state waiting → running, runs 0 → 1, pid - → 42, launch_reason - → demand"},
		{job(bootstrap.KeyState, "running", bootstrap.KeyRuns, int64(1), bootstrap.KeyPID, int64(42), bootstrap.KeyLaunchReason, "demand"), ""},
		{job(bootstrap.KeyState, "waiting", bootstrap.KeyRuns, int64(1), bootstrap.KeyLaunchReason, "demand", bootstrap.KeyLastExit, "exited with status 3"),
			`12:00:01.000 user/7/org.x: state running → waiting, last_exit - → "exited with status 3", pid 42 → -`},
		{job(bootstrap.KeyState, stateUnloaded), "12:00:01.000 user/7/org.x: state waiting → unloaded, runs 1 → -, launch_reason demand → -, last_exit \"exited with status 3\" → -"},
		{job(bootstrap.KeyState, "waiting"), "12:00:01.000 user/7/org.x waiting pid=- runs=-"},
	} {
		if got := w.line(tc.rec, at); got != tc.want {
			t.Errorf("line:\n got %q\nwant %q", got, tc.want)
		}
	}
}

// watch against xpcd: the first line of a job, then its start.
func TestWatchCommand(t *testing.T) {
	s := xpctest.NewServer(t, xpctest.WithPlist("test.w.plist", xpctest.AgentPlist("test.w", []string{"/bin/sleep", "60"}, nil, nil)))
	t.Setenv(bootstrap.RootEnv, s.Root)
	target := fmt.Sprintf("user/%d/test.w", os.Geteuid())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &watchRun{done: make(chan int, 1), cancel: cancel, deadline: time.Now().Add(15 * time.Second)}
	go func() { w.done <- run(ctx, []string{"watch", target}, nil, &w.out, &w.err) }()
	w.waitFor(t, &w.out, target+" waiting pid=- runs=0")
	if r := runCmd(t, nil, "kickstart", target); r.code != 0 {
		t.Fatalf("kickstart: %+v", r)
	}
	w.waitFor(t, &w.out, target+": state waiting → ")
	w.waitFor(t, &w.out, "runs 0 → 1")
	runCmd(t, nil, "bootout", "--wait", target)
	w.waitFor(t, &w.out, "→ unloaded")
	cancel()
	if code := <-w.done; code != 0 {
		t.Errorf("watch: exit %d, stderr %q", code, w.err.String())
	}
}

// gen-man into a directory another user may write: a symbolic link
// planted at a page's name is replaced, not followed.
func TestGenManReplacesPlantedLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"xpcctl.1", "xpcctl-list.1"} {
		if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if r := runCmd(t, nil, "gen-man", dir); r.code != 0 {
		t.Fatalf("gen-man: %+v", r)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("gen-man wrote through a link: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s: %v", e.Name(), e.Type())
		}
	}
}
