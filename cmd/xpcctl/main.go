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

// command is one entry of the command table. name may be two words for a
// command in a group ("plist lint"); the group word alone prints the group's
// commands.
type command struct {
	name    string // as typed: "decode", "plist convert"
	args    string // synopsis after the name: "[--json] [FILE]"
	summary string // one line for the command list
	help    string // what 'xpcctl help NAME' says below the synopsis
	run     func(ctx context.Context, s stdio, cmd *command, args []string) int
}

// commands is the table of commands, in the order the usage lists them.
// Later commands (list, print, call, bootstrap, ...) are added here.
var commands []*command

func init() {
	commands = []*command{
		decodeCommand,
		callCommand,
		encodeCommand,
		plistConvertCommand,
		plistLintCommand,
	}
	commands = append(commands, adminCommands()...)
	commands = append(commands, activityCommands()...)
	commands = append(commands, signCommands()...)
	commands = append(commands, notifyCommands()...)
	commands = append(commands, logCommand)
	commands = append(commands, monitorCommand, captureCommand)
	commands = append(commands,
		&command{
			name:    "help",
			args:    "[COMMAND]",
			summary: "show help for xpcctl or for one command",
			help:    "With no argument, lists the commands; with one, prints that command's usage and options.",
			run:     runHelp,
		},
	)
}

// run is the whole program, testable: it parses args (without the program
// name), runs the command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := stdio{in: stdin, out: stdout, err: stderr}
	if len(args) == 0 {
		writeUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		writeUsage(stdout)
		return exitOK
	case "--version", "-version":
		fmt.Fprintln(stdout, buildinfo.Line("xpcctl"))
		return exitOK
	}
	cmd, rest, err := lookup(args)
	if err != nil {
		fmt.Fprintf(stderr, "xpcctl: %v\n\n", err)
		writeUsage(stderr)
		return exitUsage
	}
	return cmd.run(ctx, s, cmd, rest)
}

// lookup finds the command args start with and returns the arguments after
// its name.
func lookup(args []string) (*command, []string, error) {
	group := false
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && equalWords(args[:len(words)], words) {
			return c, args[len(words):], nil
		}
		if len(words) > 1 && words[0] == args[0] {
			group = true
		}
	}
	if group {
		if len(args) == 1 {
			return nil, nil, fmt.Errorf("%q needs a subcommand", args[0])
		}
		return nil, nil, fmt.Errorf("unknown command %q", args[0]+" "+args[1])
	}
	return nil, nil, fmt.Errorf("unknown command %q", args[0])
}

func equalWords(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func writeUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("xpcctl controls goxpc services and converts XPC data.\n\n")
	b.WriteString("Usage:\n  xpcctl <command> [arguments]\n  xpcctl --version\n\nCommands:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
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

// flagSet returns a FlagSet for c whose errors go to stderr. Its usage is
// printed by parse, not by the flag package.
func (c *command) flagSet(s stdio) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {}
	return fs
}

func (c *command) writeHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", c.synopsis(), c.help)
	if fs == nil {
		return
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nOptions:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// parse parses args with flags and positional arguments in any order (a
// "--" ends the flags). On -h it prints the help to stdout; on a bad flag the
// flag package has said why on stderr and parse adds the synopsis. It
// returns the positional arguments, or ok false and the exit status.
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

func runHelp(ctx context.Context, s stdio, c *command, args []string) int {
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			c.writeHelp(s.out, nil)
			return exitOK
		}
		return c.usageError(s, "unknown flag "+args[0])
	}
	if len(args) == 0 {
		writeUsage(s.out)
		return exitOK
	}
	target, rest, err := lookup(args)
	if err != nil {
		fmt.Fprintf(s.err, "xpcctl help: %v\n\n", err)
		writeUsage(s.err)
		return exitUsage
	}
	if len(rest) > 0 {
		return c.usageError(s, "too many arguments")
	}
	if target == c {
		c.writeHelp(s.out, nil)
		return exitOK
	}
	return target.run(ctx, s, target, []string{"-h"})
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
