package xpc

import (
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// reqOp is what a node of a parsed requirement is: a clause or an
// operator.
type reqOp uint8

const (
	opUID reqOp = iota
	opGroup
	opExe
	opSHA256
	opIdentifier
	opTeam
	opSigned
	opUnit
	opNot
	opAnd
	opOr
)

// clauseWords are the clauses' keywords, by op.
var clauseWords = [...]string{
	opUID: "uid", opGroup: "group", opExe: "exe", opSHA256: "sha256",
	opIdentifier: "identifier", opTeam: "team", opSigned: "signed", opUnit: "unit",
}

// reqNode is one node of a parsed requirement. It is never changed once
// ParseRequirement has returned it.
type reqNode struct {
	op     reqOp
	arg    string   // a clause's value, as given (unquoted); a sha256's in lower case
	id     uint32   // uid or group: the number, when numeric
	named  bool     // uid or group: arg is a name, looked up when checked
	digest [32]byte // sha256
	kids   []*reqNode
	lo, hi int // the node's own text in the canonical form, without parentheses around it
}

type tokKind uint8

const (
	tokWord tokKind = iota
	tokQuoted
	tokOpen
	tokClose
	tokEnd
)

type reqToken struct {
	kind tokKind
	text string // a word, or a quoted string's value
	pos  int    // byte offset in the requirement
}

// syntaxError is a fault at byte offset pos of s.
func syntaxError(s string, pos int, format string, args ...any) *RequirementSyntaxError {
	return &RequirementSyntaxError{Column: utf8.RuneCountInString(s[:pos]) + 1, Msg: fmt.Sprintf(format, args...)}
}

// lexRequirement splits s into words, quoted strings and parentheses,
// ending with a tokEnd.
func lexRequirement(s string) ([]reqToken, error) {
	if len(s) > maxRequirementLen {
		return nil, syntaxError(s, maxRequirementLen, "longer than %d bytes", maxRequirementLen)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return nil, syntaxError(s, i, "not UTF-8")
		case r != '\t' && unicode.IsControl(r):
			return nil, syntaxError(s, i, "control character %U", r)
		}
	}
	var toks []reqToken
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case ' ', '\t':
			i++
		case '(', ')':
			k := tokOpen
			if c == ')' {
				k = tokClose
			}
			toks = append(toks, reqToken{kind: k, pos: i})
			i++
		case '"':
			v, n, err := lexQuoted(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, reqToken{kind: tokQuoted, text: v, pos: i})
			i = n
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()\"", rune(s[j])) {
				j++
			}
			toks = append(toks, reqToken{kind: tokWord, text: s[i:j], pos: i})
			i = j
		}
	}
	return append(toks, reqToken{kind: tokEnd, pos: len(s)}), nil
}

// lexQuoted reads the quoted string at s[start] ('"'): its value and the
// offset after the closing quote. \" and \\ are the only escapes.
func lexQuoted(s string, start int) (string, int, error) {
	var b strings.Builder
	for i := start + 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				i++
				b.WriteByte(s[i])
				continue
			}
			return "", 0, syntaxError(s, i, `unknown escape in a quoted value (only \" and \\)`)
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, syntaxError(s, start, "quoted value not closed")
}

// reqParser parses a requirement's tokens by recursive descent, at most
// maxRequirementDepth deep.
type reqParser struct {
	src  string
	toks []reqToken
	i    int
}

func (p *reqParser) peek() reqToken { return p.toks[p.i] }

func (p *reqParser) next() reqToken {
	t := p.toks[p.i]
	if t.kind != tokEnd {
		p.i++
	}
	return t
}

func (p *reqParser) errAt(t reqToken, format string, args ...any) error {
	return syntaxError(p.src, t.pos, format, args...)
}

// describe names t in an error message.
func describe(t reqToken) string {
	switch t.kind {
	case tokOpen:
		return `"("`
	case tokClose:
		return `")"`
	case tokEnd:
		return "the end"
	case tokQuoted:
		return "a quoted value"
	}
	return strconv.Quote(t.text)
}

// parseRequirement parses s into its tree.
func parseRequirement(s string) (*reqNode, error) {
	toks, err := lexRequirement(s)
	if err != nil {
		return nil, err
	}
	p := &reqParser{src: s, toks: toks}
	if p.peek().kind == tokEnd {
		return nil, p.errAt(p.peek(), "empty requirement")
	}
	n, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEnd {
		return nil, p.errAt(t, `expected "and", "or" or the end, found %s`, describe(t))
	}
	return n, nil
}

// isWord reports whether t is the bare word w.
func isWord(t reqToken, w string) bool { return t.kind == tokWord && t.text == w }

// parseOr parses operands joined by "or", parseAnd by "and": "and" binds
// tighter.
func (p *reqParser) parseOr(depth int) (*reqNode, error) {
	return p.parseList(depth, "or", opOr, p.parseAnd)
}

func (p *reqParser) parseAnd(depth int) (*reqNode, error) {
	return p.parseList(depth, "and", opAnd, p.parseUnary)
}

// parseList parses one or more operands joined by word into an op node,
// flattened: an operand that is itself an op node gives its operands.
func (p *reqParser) parseList(depth int, word string, op reqOp, operand func(int) (*reqNode, error)) (*reqNode, error) {
	var kids []*reqNode
	for {
		n, err := operand(depth)
		if err != nil {
			return nil, err
		}
		if n.op == op {
			kids = append(kids, n.kids...)
		} else {
			kids = append(kids, n)
		}
		if !isWord(p.peek(), word) {
			break
		}
		p.next()
	}
	if len(kids) == 1 {
		return kids[0], nil
	}
	return &reqNode{op: op, kids: kids}, nil
}

// parseUnary parses "not" X, a parenthesized requirement, or a clause.
func (p *reqParser) parseUnary(depth int) (*reqNode, error) {
	t := p.peek()
	if t.kind == tokOpen || isWord(t, "not") {
		if depth >= maxRequirementDepth {
			return nil, p.errAt(t, "nested more than %d deep", maxRequirementDepth)
		}
		p.next()
	}
	switch {
	case t.kind == tokOpen:
		n, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokClose {
			return nil, p.errAt(c, `expected ")" to close the "(" at column %d, found %s`,
				utf8.RuneCountInString(p.src[:t.pos])+1, describe(c))
		}
		return n, nil
	case isWord(t, "not"):
		n, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &reqNode{op: opNot, kids: []*reqNode{n}}, nil
	}
	return p.parseClause()
}

// parseClause parses one clause: its keyword and value.
func (p *reqParser) parseClause() (*reqNode, error) {
	t := p.next()
	op := reqOp(len(clauseWords))
	if t.kind == tokWord {
		for o, w := range clauseWords {
			if t.text == w {
				op = reqOp(o)
			}
		}
	}
	if op == reqOp(len(clauseWords)) {
		return nil, p.errAt(t, `expected a clause (uid, group, exe, sha256, identifier, team, signed or unit), "not" or "(", found %s`, describe(t))
	}
	n := &reqNode{op: op}
	if op == opSigned {
		return n, nil
	}
	v := p.next()
	if v.kind != tokWord && v.kind != tokQuoted {
		return nil, p.errAt(v, "expected a value after %s, found %s", t.text, describe(v))
	}
	if v.kind == tokWord && (v.text == "and" || v.text == "or" || v.text == "not") {
		return nil, p.errAt(v, "expected a value after %s, found %q (quote a value that is a keyword)", t.text, v.text)
	}
	if msg := n.setValue(v.text); msg != "" {
		return nil, p.errAt(v, "%s %s", t.text, msg)
	}
	return n, nil
}

// setValue checks v as n's value and sets it: "" or what is wrong with it.
func (n *reqNode) setValue(v string) string {
	n.arg = v
	if v == "" {
		return "needs a value, not an empty one"
	}
	switch n.op {
	case opUID, opGroup:
		return n.setID(v)
	case opExe:
		if !strings.HasPrefix(v, "/") || path.Clean(v) != v {
			return "needs a clean absolute path (as /proc/PID/exe shows it)"
		}
	case opSHA256:
		if len(v) != 2*len(n.digest) {
			return "needs 64 hexadecimal digits"
		}
		if _, err := hex.Decode(n.digest[:], []byte(v)); err != nil {
			return "needs 64 hexadecimal digits"
		}
		n.arg = strings.ToLower(v)
	case opUnit:
		if strings.HasPrefix(v, "/") {
			if path.Clean(v) != v {
				return "needs a clean cgroup path (no empty, . or .. component, no / at the end)"
			}
		} else if strings.Contains(v, "/") || v == "." || v == ".." {
			return "needs a cgroup name (no /) or a cgroup path (starting with /)"
		}
	}
	return ""
}

// setID sets a uid or group clause's number, or marks it a name.
func (n *reqNode) setID(v string) string {
	if strings.Trim(v, "0123456789") != "" {
		if v[0] == '-' || v[0] == '+' {
			return "needs a number or a name"
		}
		n.named = true
		return ""
	}
	id, err := strconv.ParseUint(v, 10, 32)
	if err != nil || id == 1<<32-1 {
		return "number out of range (0 to 4294967294)"
	}
	n.id = uint32(id)
	n.arg = strconv.FormatUint(id, 10)
	return ""
}

// render writes n's canonical text to b, within an operand of parent
// (opOr at the top), and records where n's own text is.
func (n *reqNode) render(b *strings.Builder, parent reqOp) {
	paren := (parent == opAnd && n.op == opOr) || (parent == opNot && (n.op == opAnd || n.op == opOr))
	if paren {
		b.WriteByte('(')
	}
	n.lo = b.Len()
	switch n.op {
	case opNot:
		b.WriteString("not ")
		n.kids[0].render(b, opNot)
	case opAnd, opOr:
		for i, k := range n.kids {
			if i > 0 {
				if n.op == opAnd {
					b.WriteString(" and ")
				} else {
					b.WriteString(" or ")
				}
			}
			k.render(b, n.op)
		}
	default:
		b.WriteString(clauseWords[n.op])
		if n.op != opSigned {
			b.WriteByte(' ')
			b.WriteString(quoteValue(n.arg))
		}
	}
	n.hi = b.Len()
	if paren {
		b.WriteByte(')')
	}
}

// quoteValue writes v bare when it reads back as one word, else quoted.
func quoteValue(v string) string {
	if v != "" && v != "and" && v != "or" && v != "not" && !strings.ContainsAny(v, " \t()\"") {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}
