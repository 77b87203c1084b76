package main

import (
	"go/types"
	"sort"
	"strconv"
	"strings"
)

// qualifier writes types as the output package sees them, and collects the
// imports they need, naming each one uniquely.
type qualifier struct {
	self   *types.Package
	byPath map[string]string // import path -> name in the file
	taken  map[string]bool   // names in use
}

func newQualifier(self *types.Package) *qualifier {
	q := &qualifier{self: self, byPath: map[string]string{}, taken: map[string]bool{}}
	for _, fixed := range [][2]string{{"context", "context"}, {"github.com/goxpc/xpc", "xpc"}, {"github.com/goxpc/xpc/typed", "typed"}} {
		q.byPath[fixed[0]] = fixed[1]
		q.taken[fixed[1]] = true
	}
	return q
}

// qualify is a types.Qualifier.
func (q *qualifier) qualify(p *types.Package) string {
	if p == q.self {
		return ""
	}
	if n, ok := q.byPath[p.Path()]; ok {
		return n
	}
	n := p.Name()
	for i := 2; q.taken[n]; i++ {
		n = p.Name() + strconv.Itoa(i)
	}
	q.byPath[p.Path()], q.taken[n] = n, true
	return n
}

func (q *qualifier) typeString(t types.Type) string { return types.TypeString(t, q.qualify) }

// imports returns the import lines the file needs beyond the fixed three,
// sorted by path: those of the standard library, then the others.
func (q *qualifier) imports() (std, other []string) {
	for path, name := range q.byPath {
		switch path {
		case "context", "github.com/goxpc/xpc", "github.com/goxpc/xpc/typed":
			continue
		}
		line := strconv.Quote(path)
		if name != lastElem(path) {
			line = name + " " + line
		}
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			other = append(other, line)
		} else {
			std = append(std, line)
		}
	}
	for _, lines := range [][]string{std, other} {
		sort.Slice(lines, func(i, j int) bool { return unquoted(lines[i]) < unquoted(lines[j]) })
	}
	return std, other
}

func lastElem(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}

// unquoted returns the path of an import line.
func unquoted(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '"' {
			s, _ := strconv.Unquote(line[i:])
			return s
		}
	}
	return line
}
