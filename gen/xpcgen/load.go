package main

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/tools/go/packages"
)

// load type-checks the package in dir. The output file, if it is there
// already, is read as an empty file of the package: stale generated code
// must not stop its own regeneration. For the same reason, code of the
// package that uses the names the output declares for the interfaces
// names (NewWeatherClient, ...) before they exist is no error.
func load(dir, out string, names []string) (*packages.Package, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("xpcgen: %w", err)
	}
	overlay := map[string][]byte{}
	outPath := filepath.Join(abs, out)
	if f, err := parser.ParseFile(token.NewFileSet(), outPath, nil, parser.PackageClauseOnly); err == nil {
		overlay[outPath] = []byte("package " + f.Name.Name + "\n")
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("xpcgen: %w", err)
	}
	cfg := &packages.Config{
		Mode:    packages.NeedName | packages.NeedTypes | packages.NeedTypesInfo | packages.NeedSyntax,
		Dir:     abs,
		Overlay: overlay,
		Tests:   false,
	}
	pkgs, err := packages.Load(cfg, ".")
	if err != nil {
		return nil, fmt.Errorf("xpcgen: load %s: %w", dir, err)
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("xpcgen: %s holds %d packages, want 1", dir, len(pkgs))
	}
	p := pkgs[0]
	var msgs []string
	for _, e := range p.Errors {
		if !onlyUndefined(e.Msg, names) {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("xpcgen: package %s does not compile:\n\t%s", p.PkgPath, strings.Join(msgs, "\n\t"))
	}
	return p, nil
}

// onlyUndefined reports whether msg, an error of the package's (from the
// type checker, or the compiler's lines under a "# package" heading), says
// only that names the output declares for the interfaces names are
// undefined.
func onlyUndefined(msg string, names []string) bool {
	generated := map[string]bool{}
	for _, n := range names {
		for _, g := range generatedNames(n) {
			generated[g] = true
		}
	}
	some := false
	for _, line := range strings.Split(strings.TrimSpace(msg), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "# ") {
			continue
		}
		_, name, ok := strings.Cut(line, "undefined: ")
		if !ok || !generated[name] {
			return false
		}
		some = true
	}
	return some
}

// iface is one interface to generate for.
type iface struct {
	Name    string
	Methods []*method
}

// method is one method of an interface.
type method struct {
	Name    string
	Params  []*param // after the context
	Results []string // types of the results before the error
	OneWay  bool     // no results at all
	Err     bool     // the last result is error
}

// param is one parameter after the context.
type param struct {
	Name  string // the name in generated code
	Type  string // as written in the output package
	Iface string // the interface's name if the parameter is one of -type
}

// model reads the named interfaces of p and checks their methods against
// the rules, returning the first method that breaks one as an error.
func model(p *packages.Package, names []string, q *qualifier) ([]*iface, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []*iface
	var errs []error
	for _, n := range names {
		obj := p.Types.Scope().Lookup(n)
		if obj == nil {
			return nil, fmt.Errorf("xpcgen: package %s has no type %s", p.PkgPath, n)
		}
		tn, ok := obj.(*types.TypeName)
		if !ok {
			return nil, fmt.Errorf("xpcgen: %s: %s is not a type", p.Fset.Position(obj.Pos()), n)
		}
		named, _ := tn.Type().(*types.Named)
		it, ok := tn.Type().Underlying().(*types.Interface)
		if !ok || named == nil {
			return nil, fmt.Errorf("xpcgen: %s: %s is not an interface type", p.Fset.Position(obj.Pos()), n)
		}
		if named.TypeParams().Len() > 0 {
			return nil, fmt.Errorf("xpcgen: %s: %s has type parameters", p.Fset.Position(obj.Pos()), n)
		}
		if it.NumMethods() == 0 {
			return nil, fmt.Errorf("xpcgen: %s: %s has no methods", p.Fset.Position(obj.Pos()), n)
		}
		for _, g := range generatedNames(n) {
			if o := p.Types.Scope().Lookup(g); o != nil {
				return nil, fmt.Errorf("xpcgen: %s: %s is declared already; the generated code for %s declares it", p.Fset.Position(o.Pos()), g, n)
			}
		}
		ifc := &iface{Name: n}
		for i := 0; i < it.NumMethods(); i++ {
			// Every method is checked, so that one run reports
			// every problem.
			m, err := checkMethod(p, n, it.Method(i), want, q)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ifc.Methods = append(ifc.Methods, m)
		}
		out = append(out, ifc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// generatedNames are the package-level names the output declares for the
// interface n.
func generatedNames(n string) []string {
	return []string{n + "Client", "New" + n + "Client", "New" + n + "Server", serviceVar(n)}
}
