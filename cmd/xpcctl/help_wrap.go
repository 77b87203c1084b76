package main

import "strings"

// helpWidth is the column a help paragraph is filled to.
const helpWidth = 72

// wrapHelp fills to helpWidth each paragraph of help that is one line too
// long for a terminal (many commands' help is written as one line per
// paragraph), so that 'xpcctl help NAME' reads as the wrapped ones do.
// Paragraphs already broken into lines, and indented ones (examples,
// tables), are left as they are.
func wrapHelp(help string) string {
	paras := strings.Split(help, "\n\n")
	for i, p := range paras {
		if strings.Contains(p, "\n") || len(p) <= 80 || strings.HasPrefix(p, " ") || strings.HasPrefix(p, "\t") {
			continue
		}
		var b strings.Builder
		col := 0
		for _, w := range strings.Fields(p) {
			switch {
			case col == 0:
			case col+1+len(w) > helpWidth:
				b.WriteByte('\n')
				col = 0
			default:
				b.WriteByte(' ')
				col++
			}
			b.WriteString(w)
			col += len(w)
		}
		paras[i] = b.String()
	}
	return strings.Join(paras, "\n\n")
}
