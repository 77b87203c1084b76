// Command xpcctl is goxpc's command line: launchctl's verbs for xpcd
// (list, print, bootstrap, kickstart, ...), a service's log and messages,
// calls to a named service, and plutil's work on XPC messages and
// property lists (decode, encode, plist convert, lint and print).
//
// Usage:
//
//	xpcctl [--system|--user] <command> [arguments]
//	xpcctl --version
//
// Run 'xpcctl help' for the list of commands and 'xpcctl help <command>'
// for one command's options. Long flags take two dashes; a one-letter flag
// is only a long one's shorthand (-k|--kill). --system and --user choose
// the xpcd to talk to. 'xpcctl completion bash|zsh|fish' prints a shell
// completion script; the hidden 'xpcctl gen-man DIR' writes the man pages.
// Exit status: 0 on success, 1 when the command failed (bad input,
// unreadable file, a refusal), 2 for a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/buildinfo"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go interrupted(sigs, cancel)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	os.Exit(code)
}

// interruptGrace is how long a command has to end after SIGINT or SIGTERM
// has cancelled its context.
const interruptGrace = 2 * time.Second

// interrupted cancels the commands' context at the first SIGINT or
// SIGTERM, so that those that talk to xpcd or a service (log --follow,
// watch, monitor) end cleanly. A command still running interruptGrace
// later, or at a second signal (one that reads a file or standard input,
// say, which no context stops), is ended by the signal as if xpcctl had
// not caught it.
func interrupted(sigs chan os.Signal, cancel context.CancelFunc) {
	sig := <-sigs
	cancel()
	select {
	case <-sigs:
	case <-time.After(interruptGrace):
	}
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	if s, ok := sig.(syscall.Signal); ok {
		syscall.Kill(os.Getpid(), s)
	}
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// stdio is what a command reads from and writes to, and the xpcd it talks
// to (--system, --user).
type stdio struct {
	in   io.Reader
	out  io.Writer
	err  io.Writer
	xpcd instance
}

// runFunc runs a command with its positional arguments, its flags already
// parsed, and returns the exit status.
type runFunc func(ctx context.Context, s stdio, c *command, pos []string) int

// command is one entry of the command table. name may be two words for a
// command in a group ("plist lint"); the group word alone says which
// commands it has.
type command struct {
	name    string // as typed: "decode", "plist convert"
	args    string // synopsis after the name, flags included: "[--json] [FILE]"
	summary string // one line for the command list
	help    string // what 'xpcctl help NAME' says below the synopsis
	// setup declares the command's flags on fs and returns what runs it.
	setup  func(fs *pflag.FlagSet) runFunc
	hidden bool // not listed, no man page: gen-man
}

// commands is the table of commands, in the order the usage lists them.
var commands []*command

func init() {
	commands = []*command{
		decodeCommand,
		callCommand,
		encodeCommand,
		plistConvertCommand,
		plistLintCommand,
		plistPrintCommand,
	}
	commands = append(commands, adminCommands()...)
	commands = append(commands, activityCommands()...)
	commands = append(commands, signCommands()...)
	commands = append(commands, notifyCommands()...)
	commands = append(commands, appCommands()...) // app.go
	commands = append(commands, logCommand)
	commands = append(commands, monitorCommand, captureCommand)
	commands = append(commands, completionCommand, genManCommand)
}

// run is the whole program, testable: it parses args (without the program
// name), runs the command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := stdio{in: stdin, out: stdout, err: stderr}
	code := exitOK
	root := newRoot(ctx, s, &code)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return code
	}
	// Cobra's own errors (an unknown command or flag, a bad flag value),
	// and a group's.
	name := cmd.CommandPath()
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	for i, l := range lines {
		// Cobra's "did you mean" indents with a tab, which escapeControls
		// would show as \t.
		lines[i] = escapeControls(strings.ReplaceAll(l, "\t", "  "), false)
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, strings.Join(lines, "\n"))
	var unknown *unknownCommandError
	if errors.As(err, &unknown) && unknown.suggested {
		fmt.Fprintf(stderr, "Run '%s' for the commands.\n", strings.TrimSpace("xpcctl help "+unknown.group))
		return exitUsage
	}
	if cmd == root || cmd.Name() == "help" || cmd.HasSubCommands() {
		fmt.Fprintln(stderr)
		group := ""
		if cmd != root && cmd.Name() != "help" {
			group = cmd.Name()
		}
		writeUsage(stderr, group)
	} else {
		fmt.Fprintf(stderr, "Run 'xpcctl help %s' for details.\n", strings.TrimPrefix(name, "xpcctl "))
	}
	return exitUsage
}

// newRoot builds xpcctl's command tree from the command table. Each run
// builds its own, so nothing is shared between runs.
func newRoot(ctx context.Context, s stdio, code *int) *cobra.Command {
	root := &cobra.Command{
		// The synopsis the usage and the man page give (the page is
		// made from markdown, where <command> would be a tag).
		Use:                   `xpcctl [--system|--user] \<command\> [arguments]`,
		DisableFlagsInUseLine: true,
		Short:                 "control goxpc services and convert XPC data",
		Long: "xpcctl controls goxpc services, as launchctl does launchd's, and converts XPC data and\n" +
			"property lists, as plutil does. Run 'xpcctl help' for the list of commands.\n\n" + instanceHelp,
		Version:       buildinfo.Line("xpcctl"),
		SilenceErrors: true,
		SilenceUsage:  true,
		// xpcctl's own word that names no command: see unknownCommand.
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand("", args[0])
			}
			writeUsage(s.err, "")
			*code = exitUsage
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true // ours is in the table
	addInstanceFlags(root)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetHelpFunc(func(cc *cobra.Command, _ []string) {
		group := strings.TrimSpace(strings.TrimPrefix(cc.CommandPath(), "xpcctl"))
		if group == "help" {
			group = "" // help -h: the usage, which says how help is used
		}
		writeUsage(s.out, group)
	})
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show help for xpcctl or for one command",
		RunE: func(_ *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return unknownCommand(strings.TrimSpace(strings.TrimPrefix(target.CommandPath(), "xpcctl")), rest[0])
			}
			return target.Help()
		},
	})
	groups := map[string]*cobra.Command{}
	for _, c := range commands {
		parent := root
		if words := strings.Fields(c.name); len(words) > 1 {
			if groups[words[0]] == nil {
				groups[words[0]] = newGroup(words[0], s, code)
				root.AddCommand(groups[words[0]])
			}
			parent = groups[words[0]]
		}
		parent.AddCommand(c.cobraCommand(ctx, s, code))
	}
	return root
}

// newGroup is the command of a group word ("plist"): alone, or with a
// word that is none of its commands, it is a usage error.
func newGroup(word string, s stdio, code *int) *cobra.Command {
	return &cobra.Command{
		Use:   word,
		Short: word + " commands",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%q needs a subcommand", word)
			}
			return unknownCommand(word, args[0])
		},
	}
}

// cobraCommand is c as a command of the tree; running it sets *code.
func (c *command) cobraCommand(ctx context.Context, s stdio, code *int) *cobra.Command {
	words := strings.Fields(c.name)
	cc := &cobra.Command{
		Use:                   strings.TrimSpace(words[len(words)-1] + " " + c.args),
		Short:                 c.summary,
		Long:                  c.help,
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
	}
	cc.Hidden = c.hidden
	rf := c.setup(cc.Flags())
	cc.SetHelpFunc(func(cc *cobra.Command, _ []string) { c.writeHelp(s.out, cc) })
	cc.SetFlagErrorFunc(func(cc *cobra.Command, err error) error {
		return fmt.Errorf("%w%s\nUsage: %s", err, twoDashes(cc, err), c.synopsis())
	})
	cc.RunE = func(cc *cobra.Command, pos []string) error {
		s := s
		inst, err := chosenInstance(cc)
		if err != nil {
			*code = c.usageError(s, err.Error())
			return nil
		}
		s.xpcd = inst
		*code = rf(ctx, s, c, pos)
		return nil
	}
	c.addCompletions(ctx, s, cc)
	return cc
}

// oneDashRE finds the word pflag read as shorthands: "unknown shorthand
// flag: 'j' in -json".
var oneDashRE = regexp.MustCompile(`in -([a-z][a-z0-9-]+)$`)

// twoDashes says, of a long flag written with one dash (as xpcctl took
// them before its flags had one spelling), how to write it.
func twoDashes(cc *cobra.Command, err error) string {
	m := oneDashRE.FindStringSubmatch(err.Error())
	if m == nil || cc.Flags().Lookup(m[1]) == nil {
		return ""
	}
	return "; long flags take two dashes: --" + m[1]
}

// writeUsage lists xpcctl's commands, or those of group ("plist").
func writeUsage(w io.Writer, group string) {
	var b strings.Builder
	list := []*command{}
	for _, c := range commands {
		if !c.hidden && (group == "" || strings.HasPrefix(c.name, group+" ")) {
			list = append(list, c)
		}
	}
	if group == "" {
		b.WriteString("xpcctl controls goxpc services and converts XPC data.\n\n")
		b.WriteString("Usage:\n  xpcctl [--system|--user] <command> [arguments]\n  xpcctl --version\n\nCommands:\n")
		list = append(list, &command{name: "help", summary: "show help for xpcctl or for one command"})
	} else {
		fmt.Fprintf(&b, "Usage:\n  xpcctl %s <command> [arguments]\n\nCommands:\n", group)
	}
	width := 0
	for _, c := range list {
		width = max(width, len(c.name))
	}
	for _, c := range list {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	b.WriteString("\nRun 'xpcctl help <command>' or 'xpcctl <command> -h' for a command's usage and options.\n")
	if group == "" {
		b.WriteString("\n" + instanceHelp + "\n")
	}
	io.WriteString(w, b.String())
}

// synopsis is the command's one-line usage.
func (c *command) synopsis() string {
	if c.args == "" {
		return "xpcctl " + c.name
	}
	return "xpcctl " + c.name + " " + c.args
}

// writeHelp prints c's synopsis, help and options: cc's own flags, then
// the global ones (--system, --user). The help flag goes without saying.
func (c *command) writeHelp(w io.Writer, cc *cobra.Command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.synopsis(), wrapHelp(c.help))
	for _, part := range []struct {
		title string
		fs    *pflag.FlagSet
	}{{"Options", cc.LocalNonPersistentFlags()}, {"Global options", cc.InheritedFlags()}} {
		if usage := flagUsages(part.fs); usage != "" {
			fmt.Fprintf(w, "\n%s:\n%s", part.title, usage)
		}
	}
}

// flagUsages is fs's option list without the help flag.
func flagUsages(fs *pflag.FlagSet) string {
	shown := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			shown.AddFlag(f)
		}
	})
	return shown.FlagUsages()
}

// usageError prints msg (if any) and the synopsis to stderr.
func (c *command) usageError(s stdio, msg string) int {
	if msg != "" {
		fmt.Fprintf(s.err, "xpcctl %s: %s\n", c.name, msg)
	}
	fmt.Fprintf(s.err, "Usage: %s\nRun 'xpcctl help %s' for details.\n", c.synopsis(), c.name)
	return exitUsage
}

// fail prints one line, "xpcctl NAME: message", to stderr.
func (c *command) fail(s stdio, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	msg = strings.ReplaceAll(msg, "\n", " ")
	// An error may quote a user's words (a label, a path): see terminal.
	fmt.Fprintf(s.err, "xpcctl %s: %s\n", c.name, escapeControls(msg, false))
	return exitFail
}

// maxInput bounds what a command reads: the largest body the codec accepts
// plus a RemoteXPC header.
const maxInput = xpc.DefaultMaxSize + xpc.WrapperHeaderSize

// readInput reads the named file, or standard input for "" or "-". It
// returns the data and the name to use in messages; its errors name the
// file already.
func readInput(s stdio, path string) ([]byte, string, error) {
	var r io.Reader
	name := path
	if path == "" || path == "-" {
		r, name = s.in, "<stdin>"
	} else {
		// O_NONBLOCK: opening a FIFO must not wait for a writer.
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, name, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, name, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxInput {
		return nil, name, fmt.Errorf("%s: larger than %d bytes", name, maxInput)
	}
	return b, name, nil
}
