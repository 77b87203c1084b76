package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var completionCommand = &command{
	name:    "completion",
	args:    "bash|zsh|fish",
	summary: "print a shell completion script: bash, zsh or fish",
	help: `Prints the script that completes xpcctl's commands, options and arguments
in the shell named: option values with fixed choices, and jobs and domains
from the xpcd that answers (nothing when none does; a DOMAIN is also your
own user/UID and system). To use it now:

  source <(xpcctl completion bash)
  xpcctl completion fish | source

or install it where the shell loads completions from (bash:
/usr/share/bash-completion/completions/xpcctl; zsh: _xpcctl in a directory
of $fpath; fish: ~/.config/fish/completions/xpcctl.fish). The bash script
needs the bash-completion package (its _get_comp_words_by_ref).`,
	setup: func(*pflag.FlagSet) runFunc { return runCompletion },
}

func runCompletion(ctx context.Context, s stdio, c *command, pos []string) int {
	if len(pos) != 1 {
		return c.usageError(s, "want one SHELL: bash, zsh or fish")
	}
	root := newRoot(ctx, s, new(int))
	var err error
	switch pos[0] {
	case "bash":
		err = root.GenBashCompletionV2(s.out, true)
	case "zsh":
		err = root.GenZshCompletion(s.out)
	case "fish":
		err = root.GenFishCompletion(s.out, true)
	default:
		return c.usageError(s, fmt.Sprintf("unknown shell %q: want bash, zsh or fish", pos[0]))
	}
	if err != nil {
		return c.fail(s, "write: %v", err)
	}
	return exitOK
}

// choicesRE matches an option with fixed values in a synopsis:
// "--to xml|binary|json".
var choicesRE = regexp.MustCompile(`--([a-z][a-z0-9-]*) ([a-z0-9-]+(?:\|[a-z0-9-]+)+)`)

// addCompletions completes cc's option values and arguments from c's
// synopsis, the one place that says them: an option written with fixed
// values ("--to xml|binary|json") completes to them, a TARGET or
// DOMAIN/LABEL to the jobs of the xpcd that answers, a DOMAIN (and
// --domain) to its domains and withOwnDomains, a SIGNAL to signalNames, a
// FILE, PATH, PREFIX or DIR to files; anything else to nothing.
func (c *command) addCompletions(ctx context.Context, s stdio, cc *cobra.Command) {
	for _, m := range choicesRE.FindAllStringSubmatch(c.args, -1) {
		if cc.Flags().Lookup(m[1]) != nil {
			choices := strings.Split(m[2], "|")
			cc.RegisterFlagCompletionFunc(m[1], func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				return prefixed(choices, toComplete), cobra.ShellCompDirectiveNoFileComp
			})
		}
	}
	if cc.Flags().Lookup("domain") != nil {
		// call --domain, plist lint --domain.
		cc.RegisterFlagCompletionFunc("domain", func(cc *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			s := s
			s.xpcd, _ = chosenInstance(cc)
			return completeWord(ctx, s, "DOMAIN", toComplete)
		})
	}
	words := positionals(c.args, cc.Flags())
	cc.ValidArgsFunction = func(cc *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(words) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		word := words[min(len(args), len(words)-1)]
		if len(args) >= len(words) && !strings.HasSuffix(word, "...") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		s := s
		s.xpcd, _ = chosenInstance(cc)
		return completeWord(ctx, s, word, toComplete)
	}
}

// completeWord completes toComplete as the synopsis word names it.
func completeWord(ctx context.Context, s stdio, word, toComplete string) ([]string, cobra.ShellCompDirective) {
	w := strings.Trim(word, "[].")
	switch {
	case strings.Contains(w, "|"):
		return prefixed(strings.Split(w, "|"), toComplete), cobra.ShellCompDirectiveNoFileComp
	case slices.Contains([]string{"FILE", "PATH", "PREFIX", "OUT"}, w):
		return nil, cobra.ShellCompDirectiveDefault
	case w == "DIR":
		return nil, cobra.ShellCompDirectiveFilterDirs
	case w == "TARGET" || w == "DOMAIN/LABEL":
		jobs, doms := reachableJobs(ctx, s)
		return prefixed(append(doms, jobs...), toComplete), cobra.ShellCompDirectiveNoFileComp
	case w == "DOMAIN":
		_, doms := reachableJobs(ctx, s)
		return prefixed(withOwnDomains(doms, s.xpcd), toComplete), cobra.ShellCompDirectiveNoFileComp
	case w == "SIGNAL":
		return prefixed(signalNames, strings.ToUpper(toComplete)), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// withOwnDomains is doms with the domains one bootstraps into before they
// have jobs: your own, and system unless XPCD_ROOT or --user names a
// user's instance (without them, requests naming system go to the system
// xpcd: instance.forTarget).
func withOwnDomains(doms []string, inst instance) []string {
	own := []string{"user/" + strconv.Itoa(os.Geteuid())}
	if os.Getenv(bootstrap.RootEnv) == "" && inst != userInstance {
		own = append(own, "system")
	}
	for _, d := range own {
		if !slices.Contains(doms, d) {
			doms = append(doms, d)
		}
	}
	return doms
}

// signalNames are the signals kill's SIGNAL completes to, as kill -l
// names them: those one sends a service.
var signalNames = []string{"TERM", "KILL", "HUP", "INT", "QUIT", "USR1", "USR2", "STOP", "CONT"}

// prefixed is the words of list that start with prefix.
func prefixed(list []string, prefix string) []string {
	var out []string
	for _, w := range list {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}

// completionTimeout bounds the list request of a completion: a shell waits
// for it at each tab.
const completionTimeout = time.Second

// reachableJobs lists the jobs (DOMAIN/LABEL) and domains of the xpcd s
// talks to; nothing, and no error, when none answers in time.
func reachableJobs(ctx context.Context, s stdio) (jobs, domains []string) {
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	reply, err := adminRequest(ctx, s.xpcd, xpc.Dict(bootstrap.KeyOp, bootstrap.OpList))
	if err != nil {
		return nil, nil
	}
	list, _ := reply.Array(bootstrap.KeyJobs)
	for _, o := range list {
		j, ok := o.(*xpc.Dictionary)
		if !ok {
			continue
		}
		dom, _ := j.String(bootstrap.KeyDomain)
		label, _ := j.String(bootstrap.KeyLabel)
		jobs = append(jobs, dom+"/"+label)
		if !slices.Contains(domains, dom) {
			domains = append(domains, dom)
		}
	}
	return jobs, domains
}

// positionals are the words of a synopsis that stand for arguments, in
// order, up to the first "|" between alternatives: options ("[--json]",
// "-k|--key KEY") left out, with the value of an option fs says takes one.
func positionals(args string, fs *pflag.FlagSet) []string {
	var words []string
	depth := 0
	skipValue := false
	for _, tok := range strings.Fields(args) {
		inOption := depth > 0 || strings.HasPrefix(tok, "[-")
		depth += strings.Count(tok, "[") - strings.Count(tok, "]")
		switch {
		case inOption:
		case skipValue:
			skipValue = false
		case tok == "|":
			return words
		case strings.HasPrefix(tok, "-"):
			f := fs.Lookup(strings.TrimLeft(tok[strings.LastIndex(tok, "|")+1:], "-"))
			skipValue = f != nil && f.Value.Type() != "bool"
		default:
			words = append(words, tok)
		}
	}
	return words
}
