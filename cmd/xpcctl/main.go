// Command xpcctl is goxpc's command line: it will carry launchctl's verbs
// for xpcd, and today decodes and encodes XPC messages and converts
// property lists, as plutil does.
//
// Usage:
//
//	xpcctl <command> [arguments]
//	xpcctl --version
//
// Run 'xpcctl help' for the list of commands and 'xpcctl help <command>'
// for one command's options. Exit status: 0 on success, 1 when the command
// failed (bad input, unreadable file), 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/buildinfo"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// stdio is what a command reads from and writes to.
type stdio struct {
	in  io.Reader
	out io.Writer
	err io.Writer
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
	setup func(fs *pflag.FlagSet) runFunc
	// run, for a command without setup, parses its own flags: it is given
	// every argument after the command's name.
	run runFunc
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
	commands = append(commands, logCommand)
	commands = append(commands, monitorCommand, captureCommand)
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
		Use:           "xpcctl",
		Short:         "control goxpc services and convert XPC data",
		Version:       buildinfo.Line("xpcctl"),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(*cobra.Command, []string) error {
			writeUsage(s.err, "")
			*code = exitUsage
			return nil
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetHelpFunc(func(cc *cobra.Command, _ []string) {
		writeUsage(s.out, strings.TrimSpace(strings.TrimPrefix(cc.CommandPath(), "xpcctl")))
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
				return fmt.Errorf("unknown command %q for %q", rest[0], target.CommandPath())
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
		Use:                        word,
		Short:                      word + " commands",
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2,
		RunE: func(g *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%q needs a subcommand", word)
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], g.CommandPath())
			if sug := g.SuggestionsFor(args[0]); len(sug) > 0 {
				msg += "; did you mean " + strings.Join(sug, " or ") + "?"
			}
			return errors.New(msg)
		},
	}
}

// cobraCommand is c as a command of the tree; running it sets *code.
func (c *command) cobraCommand(ctx context.Context, s stdio, code *int) *cobra.Command {
	words := strings.Fields(c.name)
	cc := &cobra.Command{
		Use:                   strings.TrimSpace(words[len(words)-1] + " " + c.args),
		Short:                 c.summary,
		Long:                  c.summary + ".\n\n" + c.help,
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
	}
	rf := c.run
	if c.setup != nil {
		rf = c.setup(cc.Flags())
	} else {
		cc.DisableFlagParsing = true
	}
	cc.SetHelpFunc(func(cc *cobra.Command, _ []string) { c.writeHelp(s.out, cc.Flags()) })
	cc.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w\nUsage: %s", err, c.synopsis())
	})
	cc.RunE = func(_ *cobra.Command, pos []string) error {
		*code = rf(ctx, s, c, pos)
		return nil
	}
	return cc
}

// writeUsage lists xpcctl's commands, or those of group ("plist").
func writeUsage(w io.Writer, group string) {
	var b strings.Builder
	list := []*command{}
	for _, c := range commands {
		if group == "" || strings.HasPrefix(c.name, group+" ") {
			list = append(list, c)
		}
	}
	if group == "" {
		b.WriteString("xpcctl controls goxpc services and converts XPC data.\n\n")
		b.WriteString("Usage:\n  xpcctl <command> [arguments]\n  xpcctl --version\n\nCommands:\n")
		list = append(list,
			&command{name: "completion", summary: "print a shell completion script: bash, zsh or fish"},
			&command{name: "help", summary: "show help for xpcctl or for one command"})
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
	io.WriteString(w, b.String())
}

// synopsis is the command's one-line usage.
func (c *command) synopsis() string {
	if c.args == "" {
		return "xpcctl " + c.name
	}
	return "xpcctl " + c.name + " " + c.args
}

// flagSet returns a FlagSet for a command that parses its own flags (run,
// not setup); its errors go to stderr, its usage is printed by parse.
func (c *command) flagSet(s stdio) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {}
	return fs
}

// writeHelp prints c's synopsis, help and options (fs: a pflag or a flag
// FlagSet, or nil).
func (c *command) writeHelp(w io.Writer, fs any) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.synopsis(), c.help)
	switch fs := fs.(type) {
	case *pflag.FlagSet:
		if fs.HasAvailableFlags() {
			fmt.Fprintf(w, "\nOptions:\n%s", fs.FlagUsages())
		}
	case *flag.FlagSet:
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nOptions:\n")
			fs.SetOutput(w)
			fs.PrintDefaults()
		}
	}
}

// parse parses args with flags and positional arguments in any order (a
// "--" ends the flags), for a command that parses its own. On -h it prints
// the help to stdout; on a bad flag the flag package has said why on
// stderr and parse adds the synopsis. It returns the positional arguments,
// or ok false and the exit status.
func (c *command) parse(s stdio, fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.writeHelp(s.out, fs)
			return nil, exitOK, false
		}
		if err != nil {
			c.usageError(s, "")
			return nil, exitUsage, false
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		if len(rest) == 0 {
			return pos, 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
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
		f, err := os.Open(path)
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
