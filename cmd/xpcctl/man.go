package main

import (
	"bytes"
	"context"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/goxpc/xpc/cmd/internal/manfile"
)

var genManCommand = &command{
	name:    "gen-man",
	args:    "DIR",
	summary: "write xpcctl's man pages into DIR",
	help: `Writes xpcctl.1 and one page per command (xpcctl-list.1,
xpcctl-plist-convert.1, ...) into DIR, made from the same table as the
help: each command's help is its page's description, with its options and
the global ones. For packaging; not listed in the usage.`,
	hidden: true,
	setup:  func(*pflag.FlagSet) runFunc { return runGenMan },
}

// manHeader is what every page of xpcctl's says in its header.
var manHeader = doc.GenManHeader{Section: "1", Source: "goxpc", Manual: "goxpc manual"}

func runGenMan(ctx context.Context, s stdio, c *command, pos []string) int {
	if len(pos) != 1 {
		return c.usageError(s, "want one DIR")
	}
	if err := os.MkdirAll(pos[0], 0o755); err != nil {
		return c.fail(s, "%v", err)
	}
	root := newRoot(ctx, s, new(int))
	root.DisableAutoGenTag = true // the pages are the same at each build
	if err := genManTree(root, pos[0]); err != nil {
		return c.fail(s, "%v", err)
	}
	return exitOK
}

// genManTree writes the pages doc.GenManTree writes, each through
// manfile.Write: cmd's and those of its commands, named by their paths
// ("xpcctl-plist-lint.1").
func genManTree(cmd *cobra.Command, dir string) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := genManTree(c, dir); err != nil {
			return err
		}
	}
	header := manHeader
	var b bytes.Buffer
	if err := doc.GenMan(cmd, &header, &b); err != nil {
		return err
	}
	return manfile.Write(dir, strings.ReplaceAll(cmd.CommandPath(), " ", "-")+"."+header.Section, b.Bytes())
}
