package main

import (
	"context"
	"os"

	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
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
	header := manHeader
	if err := doc.GenManTree(root, &header, pos[0]); err != nil {
		return c.fail(s, "%v", err)
	}
	return exitOK
}
