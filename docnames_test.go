package xpc_test

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestDocNames fails when README.md, a Markdown file under docs/ (design
// notes included) or a doc comment in the main module names a Go
// identifier that does not exist. It is a guard against docs that outlive
// a rename: when it fails, fix the doc (or the name it quotes), not the
// test.
//
// What counts as naming an identifier:
//
//   - In Markdown, only code: inside an inline span (`...`), a span that is
//     one Go-looking Name, optionally called (`ErrInterrupted`,
//     `NewServiceConnection(name)`), a Name( call inside a longer span, and
//     chains; inside a ```go block, chains. Prose is not read.
//   - In a doc comment (of a package, a declaration, a spec or a struct
//     field; not comments inside functions): doc links ([Name],
//     [pkg.Name], [Type.Method]), Name( calls other than a func declared in
//     an example, chains, and words that can only be identifiers: a
//     Go-looking Name with a capital inside (NewServiceListener,
//     ErrNotLaunched; not Listen, which may start a sentence). Comments of
//     the bench module and of this file are not read; the bench module's
//     names count as existing.
//
// A Go-looking Name starts with an upper-case letter, holds a lower-case
// one and no underscore: JOB, SO_PEERCRED and GOMAXPROCS are not names.
//
// A chain is identifiers joined by dots that is not part of a path, a host
// or a file name (docs/XPCD.md, howett.net/plist) and not a prefix
// (bootstrap.Reason*). With a lower-case member (doc.go, launchd.plist) it
// is not a reference. Otherwise:
//
//   - pkg.Name[.Member], when pkg is the name of a package in this
//     repository (xpc, launchd, xpctest, xpcd, bootstrap, wire, ...) or of a
//     standard package the repository imports (os, syscall, runtime, ...;
//     read from GOROOT): Name must be declared at its top level, and
//     Member must be a method or field of that type. Packages from outside
//     the standard library (unix, plist, grpc, ...) are not checked: write
//     their names qualified.
//   - Type.Member, when Type is capitalized: a type of that name must exist
//     in this repository or an imported standard package, with that method
//     or field (promoted ones included). A member that is the value of a
//     string literal in the code is a plist key path (KeepAlive.NetworkState)
//     and passes.
//   - Any other chain (msg.Body, ss.do) is a variable's selector: skipped.
//
// A bare Name (a span, a call, a link or a word) must be declared somewhere
// in the repository (at top level, or as a method or a field; tests
// included), or be the exact value of a string literal in its non-test Go
// code: launchd.plist keys and the words of xpcd's protocol (`MachServices`,
// `XPCErrorDescription`) are quoted in code spans too. In a comment it may
// also be declared by a standard package its file imports (RawConn,
// AfterFunc), or be one of docProperNouns.
func TestDocNames(t *testing.T) {
	idx := newDocIndex(t, ".")
	var files []string
	files = append(files, "README.md")
	filepath.WalkDir("docs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	var bad []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range markdownNameRefs(string(data)) {
			if why := idx.check(r); why != "" {
				bad = append(bad, fmt.Sprintf("%s:%d: %s: %s", f, r.line, r.text, why))
			}
		}
	}
	for _, c := range idx.comments {
		for _, r := range commentNameRefs(c.text) {
			if why := idx.check(r); why != "" && !idx.inStd(c.std, r) {
				bad = append(bad, fmt.Sprintf("%s:%d: %s: %s", c.file, c.line, r.text, why))
			}
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestDocNamesExtraction pins what counts as naming an identifier.
func TestDocNamesExtraction(t *testing.T) {
	for _, tc := range []struct {
		md   bool
		text string
		want []string // kind:text
	}{
		{true, "use `NewServiceListener(name)` here", []string{"bare:NewServiceListener"}},
		{true, "`xpc.Bootstrap` and `Message.ReplyError`", []string{"chain:xpc.Bootstrap", "chain:Message.ReplyError"}},
		{true, "`(*xpc.Encoder).EncodeValue`", []string{"chain:xpc.Encoder"}},
		{true, "`xpctest.NewServer(t, xpctest.WithPlist(...))`", []string{"chain:xpctest.NewServer", "chain:xpctest.WithPlist"}},
		{true, "`ErrInterrupted`, `SO_PEERCRED`, `GOMAXPROCS`, `JOB`", []string{"bare:ErrInterrupted"}},
		{true, "`docs/XPCD.md`, `launchd.plist`, `./cmd/xpcd`, `msg.body`", nil},
		{true, "`msg.Body`", []string{"chain:msg.Body"}}, // found; resolved as a variable's
		{true, "`Format`, `Int64`, `VmRSS`", []string{"bare:Format", "bare:Int64", "bare:VmRSS"}},
		{true, "`NewDictionary` + 3 `Set`", []string{"bare:NewDictionary", "bare:Set"}},
		{true, "prose names Foo( and xpc.Foo", nil},
		{true, "```go\nc, err := xpc.NewServiceConnection(\"x\")\nl.SetHandler(h)\n```", []string{"chain:xpc.NewServiceConnection", "chain:l.SetHandler"}},
		{true, "```sh\ngo run ./cmd/xpc.Foo\n```", nil},
		{true, "``NewFoo()`` works", []string{"bare:NewFoo"}},
		{false, "use NewServiceListener instead, or Config.User.", []string{"chain:Config.User", "word:NewServiceListener"}},
		{false, "Listen for a name; RemoteXPC in KiB; GOMAXPROCS", []string{"word:RemoteXPC", "word:KiB"}},
		{false, "calls Listen(ctx, name) on the [Service]; see [xpc.Bootstrap].", []string{"link:Service", "call:Listen", "chain:xpc.Bootstrap"}},
		{false, "[JOB], [LOADERR], e.g. internal/xpcd/doc.go, howett.net/plist", nil},
		{false, "unix.Sendmsg(fd) and wire.Header", []string{"chain:unix.Sendmsg", "chain:wire.Header"}},
		{false, "{\"op\":\"lookup\"} SIGKILL(9) EPIPE", nil},
	} {
		var refs []docNameRef
		if tc.md {
			refs = markdownNameRefs(tc.text)
		} else {
			refs = commentNameRefs(tc.text)
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.kind+":"+r.text)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.text, got, tc.want)
		}
	}
}

// TestDocNamesResolve checks the index against names that exist and
// names that do not.
func TestDocNamesResolve(t *testing.T) {
	idx := newDocIndex(t, ".")
	for _, tc := range []struct {
		ref docNameRef
		ok  bool
	}{
		{docNameRef{kind: "chain", text: "xpc.NewServiceConnection"}, true},
		{docNameRef{kind: "chain", text: "xpc.NewServiceListener"}, false},
		{docNameRef{kind: "chain", text: "xpc.Connection.SendWithReply"}, true},
		{docNameRef{kind: "chain", text: "xpc.Connection.SendWithReplyNow"}, false},
		{docNameRef{kind: "chain", text: "Message.ReplyError"}, true},
		{docNameRef{kind: "chain", text: "Message.ReplyErrorNow"}, false},
		{docNameRef{kind: "chain", text: "Peer.PID"}, true},
		{docNameRef{kind: "chain", text: "launchd.Job"}, true},
		{docNameRef{kind: "chain", text: "os.File"}, true},
		{docNameRef{kind: "chain", text: "os.Fiel"}, false},
		{docNameRef{kind: "chain", text: "runtime.MemStats.Mallocs"}, true},
		{docNameRef{kind: "chain", text: "unix.AnythingAtAll"}, true}, // not std: not checked
		{docNameRef{kind: "chain", text: "msg.Whatever"}, true},       // a variable
		{docNameRef{kind: "chain", text: "NoSuchType.Method"}, false},
		{docNameRef{kind: "bare", text: "NewServiceListener"}, false},
		{docNameRef{kind: "bare", text: "ErrInterrupted"}, true},
		{docNameRef{kind: "bare", text: "MachServices"}, true}, // a plist key
		{docNameRef{kind: "call", text: "SetHandler"}, true},
	} {
		why := idx.check(tc.ref)
		if (why == "") != tc.ok {
			t.Errorf("%s %s: resolved %v (%s), want %v", tc.ref.kind, tc.ref.text, why == "", why, tc.ok)
		}
	}
}

// docNameRef is one place where text names an identifier.
type docNameRef struct {
	kind string // "chain", "bare" (a code span), "call" (Name(), "link" ([Name])
	text string
	line int // 1-based, within the text it was found in
}

var (
	docChainRE = regexp.MustCompile(`[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+`)
	docIdentRE = regexp.MustCompile(`[A-Z]\w*`)
	docLinkRE  = regexp.MustCompile(`\[\*?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*){0,2})\]`)
	docSpanRE  = regexp.MustCompile("(`+)(.+?)(`+)")
	docWholeRE = regexp.MustCompile(`^\*?([A-Z]\w*)(?:\(.*\))?$`)
	// docFuncDeclRE matches what comes before the name a func declares.
	docFuncDeclRE = regexp.MustCompile(`func (\([^)]*\) )?$`)
	docCamelRE    = regexp.MustCompile(`[a-z0-9][A-Z]`)
)

// goLooking reports whether s could be an exported Go identifier rather
// than a word in capitals or a C constant.
func goLooking(s string) bool {
	if s == "" || !unicode.IsUpper(rune(s[0])) || strings.Contains(s, "_") {
		return false
	}
	return strings.IndexFunc(s, unicode.IsLower) >= 0
}

// docMatch is one match of a regexp in a line, with the bytes around it
// (0 at either end of the line).
type docMatch struct {
	text          string
	before, after byte
	start         int
}

func docMatches(re *regexp.Regexp, line string) []docMatch {
	var ms []docMatch
	for _, ix := range re.FindAllStringIndex(line, -1) {
		m := docMatch{text: line[ix[0]:ix[1]], start: ix[0]}
		if ix[0] > 0 {
			m.before = line[ix[0]-1]
		}
		if ix[1] < len(line) {
			m.after = line[ix[1]]
		}
		if isWordByte(m.before) {
			continue // inside a longer word
		}
		ms = append(ms, m)
	}
	return ms
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// chainRefs finds pkg.Name and Type.Member chains in one line.
func chainRefs(line string, n int) []docNameRef {
	var refs []docNameRef
	for _, m := range docMatches(docChainRE, line) {
		if m.before == '/' || m.before == '.' || m.after == '/' || m.after == '-' || m.after == '*' {
			continue // a path, a host name, a file name, or a prefix (bootstrap.Reason*)
		}
		parts := strings.Split(m.text, ".")
		if !unicode.IsUpper(rune(parts[1][0])) {
			continue // doc.go, launchd.plist, ss.do
		}
		refs = append(refs, docNameRef{kind: "chain", text: m.text, line: n})
	}
	return refs
}

// callRefs finds Name( calls in one line; a function declared in an
// example (func Name() is not a reference.
func callRefs(line string, n int) []docNameRef {
	var refs []docNameRef
	for _, m := range docMatches(docIdentRE, line) {
		if m.after == '(' && m.before != '.' && goLooking(m.text) && !docFuncDeclRE.MatchString(line[:m.start]) {
			refs = append(refs, docNameRef{kind: "call", text: m.text, line: n})
		}
	}
	return refs
}

// wordRefs finds, in a doc comment's prose, words that can only be
// identifiers: Go-looking, with a capital inside (NewServiceListener,
// ErrNotLaunched), not part of a chain, a link or a call.
func wordRefs(line string, n int) []docNameRef {
	var refs []docNameRef
	for _, m := range docMatches(docIdentRE, line) {
		switch {
		case m.before == '.' || m.before == '*' || m.before == '[' || m.after == '.' && m.start+len(m.text)+1 < len(line) && isWordByte(line[m.start+len(m.text)+1]):
		case m.after == '(' || !goLooking(m.text) || !docCamelRE.MatchString(m.text):
		default:
			refs = append(refs, docNameRef{kind: "word", text: m.text, line: n})
		}
	}
	return refs
}

// commentNameRefs finds the identifiers a doc comment's text names.
func commentNameRefs(text string) []docNameRef {
	var refs []docNameRef
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		for _, m := range docLinkRE.FindAllStringSubmatch(line, -1) {
			if !strings.Contains(m[1], ".") && goLooking(m[1]) {
				refs = append(refs, docNameRef{kind: "link", text: m[1], line: n})
			}
		}
		refs = append(refs, callRefs(line, n)...)
		refs = append(refs, chainRefs(line, n)...)
		refs = append(refs, wordRefs(line, n)...)
	}
	return refs
}

// markdownNameRefs finds the identifiers Markdown names in its code.
func markdownNameRefs(text string) []docNameRef {
	var refs []docNameRef
	fence := "" // the info string of the fenced block we are in, or ""
	in := false
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") {
			in = !in
			fence = strings.TrimPrefix(t, "```")
			continue
		}
		if in {
			if fence == "go" {
				refs = append(refs, chainRefs(line, n)...)
			}
			continue
		}
		for _, m := range docSpanRE.FindAllStringSubmatch(line, -1) {
			if m[1] != m[3] {
				continue
			}
			span := strings.TrimSpace(m[2])
			if w := docWholeRE.FindStringSubmatch(span); w != nil && goLooking(w[1]) {
				refs = append(refs, docNameRef{kind: "bare", text: w[1], line: n})
				continue
			}
			refs = append(refs, callRefs(span, n)...)
			refs = append(refs, chainRefs(span, n)...)
		}
	}
	return refs
}

// docIndex holds the names the repository's Go code declares.
// docIndex holds the names the repository's Go code declares, and the doc
// comments of the main module.
type docIndex struct {
	t        *testing.T
	pkgs     map[string][]*docPkg // by package name
	names    map[string]bool      // every declared name, at any level, tests included
	strs     map[string]bool      // every string literal's value, outside tests
	imports  map[string]string    // package name -> standard import path
	foreign  map[string]bool      // names of imported packages outside the standard library
	std      map[string]*docPkg   // loaded standard packages, by name
	comments []docComment
}

// docPkg is one package's exported top-level names and its types.
type docPkg struct {
	top   map[string]bool
	types map[string]*docType
}

// docType is a type's methods and fields, and the types it embeds.
type docType struct {
	members map[string]bool
	embeds  []string // local type names; "" for a type of another package
}

// docComment is one line of a doc comment.
type docComment struct {
	file string
	line int
	text string
	std  []string // the standard packages its file imports, by name
}

// docProperNouns are words with a capital inside that name no identifier:
// names of formats and products, and units.
var docProperNouns = map[string]bool{"RemoteXPC": true, "OpenStep": true, "CoreDevice": true, "SMAppService": true,
	"KiB": true, "MiB": true, "GiB": true, "TiB": true, "NaN": true, "NaNs": true}

// docModule is the main module's path; its packages and the bench
// module's are read from source.
const docModule = "github.com/goxpc/xpc"

func newDocPkg() *docPkg {
	return &docPkg{top: map[string]bool{}, types: map[string]*docType{}}
}

func (p *docPkg) typ(name string) *docType {
	if p.types[name] == nil {
		p.types[name] = &docType{members: map[string]bool{}}
	}
	return p.types[name]
}

// newDocIndex indexes every Go file under root. Doc comments are read
// only in root's own module (not in a directory with a go.mod of its own,
// such as bench/) and not in this file, which talks about names in the
// abstract.
func newDocIndex(t *testing.T, root string) *docIndex {
	t.Helper()
	idx := &docIndex{t: t, pkgs: map[string][]*docPkg{}, names: map[string]bool{}, strs: map[string]bool{},
		imports: map[string]string{}, foreign: map[string]bool{}, std: map[string]*docPkg{}}
	var nested []string // roots of other modules
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
			nested = append(nested, path+string(filepath.Separator))
		}
		own := !slices.ContainsFunc(nested, func(n string) bool { return strings.HasPrefix(path+string(filepath.Separator), n) })
		return idx.addDir(path, own)
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// addDir indexes the Go files of one directory, each package clause apart.
func (idx *docIndex) addDir(dir string, comments bool) error {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	byName := map[string]*docPkg{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		p := byName[f.Name.Name]
		if p == nil {
			p = newDocPkg()
			byName[f.Name.Name] = p
			idx.pkgs[f.Name.Name] = append(idx.pkgs[f.Name.Name], p)
		}
		docDecls(f, p, idx.names)
		std := idx.addImports(f)
		test := strings.HasSuffix(path, "_test.go")
		if !test {
			ast.Inspect(f, func(n ast.Node) bool {
				if l, ok := n.(*ast.BasicLit); ok && l.Kind == token.STRING {
					if s, err := strconv.Unquote(l.Value); err == nil {
						idx.strs[s] = true
					}
				}
				return true
			})
		}
		if comments && e.Name() != "docnames_test.go" {
			for _, cg := range docComments(f) {
				idx.addComment(fset, cg, std)
			}
		}
	}
	return nil
}

// addImports records the packages f imports and returns the names of its
// standard ones.
func (idx *docIndex) addImports(f *ast.File) []string {
	var std []string
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		name := docImportName(path)
		if im.Name != nil {
			name = im.Name.Name
		}
		switch {
		case name == "_" || name == ".":
		case path == docModule || strings.HasPrefix(path, docModule+"/"):
			// This repository's: indexed from its source.
		case strings.Contains(strings.Split(path, "/")[0], "."):
			idx.foreign[name] = true
		default:
			idx.imports[name] = path
			std = append(std, name)
		}
	}
	return std
}

// docComments returns f's doc comments: the package's, and those of
// declarations, specs and struct fields.
func docComments(f *ast.File) []*ast.CommentGroup {
	var cgs []*ast.CommentGroup
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.File:
			cgs = append(cgs, n.Doc)
		case *ast.GenDecl:
			cgs = append(cgs, n.Doc)
		case *ast.FuncDecl:
			cgs = append(cgs, n.Doc)
		case *ast.TypeSpec:
			cgs = append(cgs, n.Doc)
		case *ast.ValueSpec:
			cgs = append(cgs, n.Doc)
		case *ast.Field:
			cgs = append(cgs, n.Doc)
		}
		return true
	})
	return slices.DeleteFunc(cgs, func(cg *ast.CommentGroup) bool { return cg == nil })
}

// docImportName is the package name an import path is usually imported
// as: its last element, less a major-version suffix.
func docImportName(path string) string {
	elems := strings.Split(path, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		last = elems[len(elems)-2]
	}
	return last
}

func (idx *docIndex) addComment(fset *token.FileSet, cg *ast.CommentGroup, std []string) {
	for _, c := range cg.List {
		pos := fset.Position(c.Slash)
		text := strings.TrimPrefix(c.Text, "//")
		if strings.HasPrefix(text, "go:") || strings.HasPrefix(text, "line ") {
			continue // a directive
		}
		text = strings.TrimSuffix(strings.TrimPrefix(text, "/*"), "*/")
		for i, line := range strings.Split(text, "\n") {
			idx.comments = append(idx.comments, docComment{file: pos.Filename, line: pos.Line + i, text: line, std: std})
		}
	}
}

// docDecls records a file's declarations in p, and every declared name
// in names.
func docDecls(f *ast.File, p *docPkg, names map[string]bool) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			names[d.Name.Name] = true
			if d.Recv == nil {
				p.top[d.Name.Name] = true
			} else if len(d.Recv.List) == 1 {
				p.typ(docRecvName(d.Recv.List[0].Type)).members[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names[n.Name] = true
						p.top[n.Name] = true
					}
				case *ast.TypeSpec:
					names[s.Name.Name] = true
					p.top[s.Name.Name] = true
					docTypeMembers(p.typ(s.Name.Name), s, names)
				}
			}
		}
	}
}

// docRecvName is the name of a method's receiver type.
func docRecvName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func docTypeMembers(dt *docType, s *ast.TypeSpec, names map[string]bool) {
	var fields *ast.FieldList
	switch x := s.Type.(type) {
	case *ast.StructType:
		fields = x.Fields
	case *ast.InterfaceType:
		fields = x.Methods
	default:
		if s.Assign.IsValid() {
			dt.embeds = append(dt.embeds, docEmbedName(s.Type)) // an alias
		}
		return
	}
	for _, f := range fields.List {
		if len(f.Names) == 0 {
			e := docEmbedName(f.Type)
			dt.embeds = append(dt.embeds, e)
			if e != "" {
				dt.members[e] = true // the embedded field is named after its type
			}
		}
		for _, n := range f.Names {
			names[n.Name] = true
			dt.members[n.Name] = true
		}
	}
}

// docEmbedName is an embedded type's name if it is of the same package,
// else "".
func docEmbedName(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if _, ok := e.(*ast.SelectorExpr); ok {
		return ""
	}
	return docRecvName(e)
}

// stdPkg loads the exported names of the standard package the repository
// imports as name, or returns nil.
func (idx *docIndex) stdPkg(name string) *docPkg {
	path, ok := idx.imports[name]
	if !ok || idx.foreign[name] {
		return nil
	}
	if p, ok := idx.std[name]; ok {
		return p
	}
	p := newDocPkg()
	idx.std[name] = p
	dir := filepath.Join(build.Default.GOROOT, "src", filepath.FromSlash(path))
	entries, err := os.ReadDir(dir)
	if err != nil {
		idx.t.Fatalf("standard package %s: %v", path, err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		if ok, err := build.Default.MatchFile(dir, n); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			idx.t.Fatal(err)
		}
		docDecls(f, p, map[string]bool{})
	}
	return p
}

// hasMember reports whether a type named typ in one of pkgs has member,
// and whether such a type exists at all. A member may come from an
// embedded type; one of another package is not looked into, and may
// have it.
func hasMember(pkgs []*docPkg, typ, member string) (found, exists bool) {
	for _, p := range pkgs {
		if p.types[typ] == nil {
			continue
		}
		exists = true
		seen := map[string]bool{}
		var walk func(name string) bool
		walk = func(name string) bool {
			dt := p.types[name]
			if dt == nil || seen[name] {
				return false
			}
			seen[name] = true
			if dt.members[member] {
				return true
			}
			return slices.ContainsFunc(dt.embeds, func(e string) bool { return e == "" || walk(e) })
		}
		if walk(typ) {
			return true, true
		}
	}
	return false, exists
}

// check returns why r names nothing, or "".
func (idx *docIndex) check(r docNameRef) string {
	if r.kind != "chain" {
		if idx.names[r.text] || idx.strs[r.text] || r.kind == "word" && docProperNouns[r.text] {
			return ""
		}
		return "no such identifier in the repository"
	}
	parts := strings.Split(r.text, ".")
	first := parts[0]
	if idx.foreign[first] {
		return "" // a package outside the standard library: not checked
	}
	if pkgs, ok := idx.pkgs[first]; ok || idx.imports[first] != "" {
		if !ok {
			pkgs = []*docPkg{idx.stdPkg(first)}
		}
		return idx.checkInPkgs(pkgs, first, parts[1:])
	}
	if !unicode.IsUpper(rune(first[0])) || idx.strs[parts[1]] {
		return "" // a variable's field or method, or a plist key's (KeepAlive.NetworkState)
	}
	var all []*docPkg
	for _, ps := range idx.pkgs {
		all = append(all, ps...)
	}
	for name := range idx.imports {
		if p := idx.stdPkg(name); p != nil && p.types[first] != nil {
			all = append(all, p)
		}
	}
	if found, exists := hasMember(all, first, parts[1]); found {
		return ""
	} else if exists {
		return fmt.Sprintf("type %s has no method or field %s", first, parts[1])
	}
	return fmt.Sprintf("no type %s", first)
}

// checkInPkgs checks rest (Name, or Type and Member) in package pkg.
func (idx *docIndex) checkInPkgs(pkgs []*docPkg, pkg string, rest []string) string {
	name := rest[0]
	if !slices.ContainsFunc(pkgs, func(p *docPkg) bool { return p.top[name] }) {
		return fmt.Sprintf("package %s has no %s", pkg, name)
	}
	if len(rest) < 2 || !unicode.IsUpper(rune(rest[1][0])) {
		return ""
	}
	if found, exists := hasMember(pkgs, name, rest[1]); !found && exists {
		return fmt.Sprintf("type %s.%s has no method or field %s", pkg, name, rest[1])
	}
	return ""
}

// inStd reports whether r, a bare name in a comment, is declared by one of
// the standard packages std the comment's file imports (RawConn,
// AfterFunc).
func (idx *docIndex) inStd(std []string, r docNameRef) bool {
	if r.kind == "chain" {
		return false
	}
	return slices.ContainsFunc(std, func(name string) bool {
		p := idx.stdPkg(name)
		if p == nil {
			return false
		}
		if p.top[r.text] {
			return true
		}
		for _, dt := range p.types {
			if dt.members[r.text] {
				return true
			}
		}
		return false
	})
}
