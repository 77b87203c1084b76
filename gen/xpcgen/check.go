package main

import (
	"fmt"
	"go/types"
	"strconv"

	"golang.org/x/tools/go/packages"
)

// checkMethod checks one method against the rules (docs/TYPED.md,
// "Interfaces") and returns its model.
func checkMethod(p *packages.Package, ifc string, fn *types.Func, want map[string]bool, q *qualifier) (*method, error) {
	sig := fn.Type().(*types.Signature)
	where := func(format string, args ...any) error {
		return fmt.Errorf("xpcgen: %s: %s.%s: %s", p.Fset.Position(fn.Pos()), ifc, fn.Name(), fmt.Sprintf(format, args...))
	}
	if sig.Variadic() {
		return nil, where("variadic parameters are not supported")
	}
	ps, rs := sig.Params(), sig.Results()
	if ps.Len() == 0 || !isContext(ps.At(0).Type()) {
		return nil, where("parameter 1 must be context.Context")
	}
	m := &method{Name: fn.Name(), OneWay: rs.Len() == 0}
	if rs.Len() > 0 {
		if !isError(rs.At(rs.Len() - 1).Type()) {
			return nil, where("result %d must be error (a method returns nothing, for one-way, or ends with error)", rs.Len())
		}
		m.Err = true
	}
	rel := types.RelativeTo(p.Types)
	used := map[string]bool{}
	for i := 1; i < ps.Len(); i++ {
		v := ps.At(i)
		pr := &param{Name: paramName(v.Name(), i-1, used), Type: q.typeString(v.Type())}
		if n := localIface(p, v.Type(), want); n != "" {
			if m.OneWay {
				return nil, where("parameter %d (%s): an interface argument needs a two-way method (one ending with error): it is called back only while the call is in progress", i+1, n)
			}
			pr.Iface = n
		} else if why := unsupported(v.Type(), want, p); why != "" {
			return nil, where("parameter %d (%s): %s", i+1, types.TypeString(v.Type(), rel), why)
		}
		m.Params = append(m.Params, pr)
	}
	for i := 0; i < rs.Len()-1; i++ {
		t := rs.At(i).Type()
		if localIface(p, t, want) != "" {
			return nil, where("result %d (%s): interfaces cross only as arguments", i+1, types.TypeString(t, rel))
		}
		if why := unsupported(t, want, p); why != "" {
			return nil, where("result %d (%s): %s", i+1, types.TypeString(t, rel), why)
		}
		m.Results = append(m.Results, q.typeString(t))
	}
	return m, nil
}

// reserved are the names generated methods use for their own variables.
var reserved = map[string]bool{"ctx": true, "req": true, "rep": true, "err": true, "impl": true, "in": true, "c": true, "typed": true, "xpc": true, "context": true}

// paramName is the name of the parameter at position i in generated code:
// its own name where that is free, else pI.
func paramName(name string, i int, used map[string]bool) string {
	if name == "" || name == "_" || reserved[name] || used[name] || isGenerated(name) {
		name = "p" + strconv.Itoa(i)
	}
	used[name] = true
	return name
}

// isGenerated reports whether name has the form of a generated name (pN,
// rN, aN), which parameters may not take.
func isGenerated(name string) bool {
	if len(name) < 2 || (name[0] != 'p' && name[0] != 'r' && name[0] != 'a') {
		return false
	}
	_, err := strconv.Atoi(name[1:])
	return err == nil
}

func isContext(t types.Type) bool {
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

func isError(t types.Type) bool {
	return types.Identical(t, types.Universe.Lookup("error").Type())
}

// localIface returns the name of t if it is one of the interfaces given
// to the generator (want), declared in p.
func localIface(p *packages.Package, t types.Type, want map[string]bool) string {
	n, ok := t.(*types.Named)
	if !ok || n.Obj().Pkg() != p.Types || !want[n.Obj().Name()] {
		return ""
	}
	return n.Obj().Name()
}

// unsupported says why values of t cannot cross (xpc.ValueOf cannot
// convert them), or returns "". Types with their own conversion
// (MarshalXPC) are taken as they are; struct fields are not looked into.
func unsupported(t types.Type, want map[string]bool, p *packages.Package) string {
	if hasMethod(t, "MarshalXPC") {
		return ""
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Info()&types.IsComplex != 0:
			return "complex numbers do not cross"
		case u.Kind() == types.UnsafePointer:
			return "pointers do not cross"
		}
	case *types.Chan:
		return "channels do not cross"
	case *types.Signature:
		return "functions do not cross; pass an interface given to -type"
	case *types.Interface:
		if isError(t) {
			return "errors cross only as the last result"
		}
		if !u.Empty() {
			return "an interface argument must be one of the interfaces given to -type, in this package"
		}
	case *types.Pointer:
		return unsupported(u.Elem(), want, p)
	case *types.Slice:
		return unsupported(u.Elem(), want, p)
	case *types.Array:
		return unsupported(u.Elem(), want, p)
	case *types.Map:
		if b, ok := u.Key().Underlying().(*types.Basic); !ok || b.Info()&types.IsString == 0 {
			return "map keys must be strings"
		}
		return unsupported(u.Elem(), want, p)
	}
	return ""
}

func hasMethod(t types.Type, name string) bool {
	for _, tt := range []types.Type{t, types.NewPointer(t)} {
		ms := types.NewMethodSet(tt)
		for i := 0; i < ms.Len(); i++ {
			if ms.At(i).Obj().Name() == name {
				return true
			}
		}
	}
	return false
}
