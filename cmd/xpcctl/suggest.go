package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goxpc/xpc/internal/editdist"
)

// maxSuggestions bounds the commands "did you mean" names.
const maxSuggestions = 3

// unknownCommand is the error of word, which names no command of group
// ("" for xpcctl's own, "plist" for plist's), with the commands it may
// have meant: one line, the same for xpcctl and for a group.
func unknownCommand(group, word string) error {
	path := strings.TrimSpace("xpcctl " + group)
	msg := fmt.Sprintf("unknown command %q for %q", word, path)
	sug := suggest(group, word)
	if len(sug) > 0 {
		msg += "; did you mean " + strings.Join(sug, " or ") + "?"
	}
	return &unknownCommandError{msg: msg, group: group, suggested: len(sug) > 0}
}

// unknownCommandError is unknownCommand's error. With a suggestion, run
// follows it with one line pointing at help rather than the whole usage,
// which would push the suggestion off the screen.
type unknownCommandError struct {
	msg       string
	group     string // "" for xpcctl's own commands
	suggested bool
}

func (e *unknownCommandError) Error() string { return e.msg }

// suggest returns the commands of group a mistyped word may have meant:
// those nearest to it, within two edits (a command that starts with word
// counts as one). Of xpcctl's own, a group's command matches by its last
// word too, one edit further, so that "lint" finds "plist lint"; a
// group's are named by their last word.
func suggest(group, word string) []string {
	if len(word) > editdist.MaxLen {
		return nil
	}
	word = strings.ToLower(word)
	best := 3
	var names []string
	add := func(name, typed string, extra int) {
		d := editdist.Distance(word, typed, 3)
		if strings.HasPrefix(typed, word) {
			d = min(d, 1)
		}
		d += extra
		switch {
		case d > best || slices.Contains(names, name):
		case d < best:
			best, names = d, []string{name}
		default:
			names = append(names, name)
		}
	}
	for _, c := range commands {
		if c.hidden {
			continue
		}
		words := strings.Fields(c.name)
		switch {
		case group != "" && len(words) == 2 && words[0] == group:
			add(words[1], words[1], 0)
		case group == "":
			add(words[0], words[0], 0)
			if len(words) == 2 {
				add(c.name, words[1], 1)
			}
		}
	}
	if group == "" {
		add("help", "help", 0)
	}
	if best > 2 {
		return nil
	}
	return names[:min(len(names), maxSuggestions)]
}
