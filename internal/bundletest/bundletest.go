// Package bundletest writes application bundles for tests: Make lays out
// a bundle of either layout (package bundle) from a Spec, with
// Info.plists, executables and job plists, ready for bundle.Read.
package bundletest

import (
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
)

// Spec describes a bundle to Make.
type Spec struct {
	// Name is the bundle's directory name; default Identifier + ".app".
	Name string
	// Identifier is the CFBundleIdentifier; default "org.example.app".
	Identifier string
	// Executable is the CFBundleExecutable: the main executable's path,
	// relative to ROOT (Flat) or ROOT/Contents/MacOS (Contents); default
	// "app".
	Executable string
	// Layout is bundle.Flat (the default, for 0) or bundle.Contents.
	Layout bundle.Layout
	// Version is the CFBundleVersion; "" leaves the key out.
	Version string
	// Exe is the program every executable of the bundle is a copy of
	// (such as os.Args[0], or a helper built with go build); "" writes a
	// small shell script that sleeps instead.
	Exe string
	// Services are the XPC services.
	Services []ServiceSpec
	// Agents and Daemons are the job plists of Library/LaunchAgents and
	// Library/LaunchDaemons.
	Agents, Daemons []PlistSpec
}

// ServiceSpec describes an XPC service, NAME.xpc, whose executable is
// NAME.xpc/NAME (Flat) or NAME.xpc/Contents/MacOS/NAME (Contents).
type ServiceSpec struct {
	Name string // the directory name without ".xpc"; required
	// Identifier is its CFBundleIdentifier; default the bundle's
	// Identifier + "." + Name.
	Identifier          string
	Type                bundle.ServiceType
	Environment         map[string]string
	JoinExistingSession bool
	// IdleExitTimeout is written in whole seconds; 0 leaves the key out.
	IdleExitTimeout time.Duration
}

// PlistSpec describes a job plist of Library/LaunchAgents or
// Library/LaunchDaemons.
type PlistSpec struct {
	// Name is the file name; default Label + ".plist".
	Name string
	// Label is the job's Label; required.
	Label string
	// Extra holds more keys (such as "MachServices"), of the types
	// xpc.ValueOf takes (xpc.Object values included). BundleProgram
	// defaults to the main executable's path relative to ROOT; Extra may
	// set another, or set it to nil to leave it out.
	Extra map[string]any
}

// script is the executable Make writes when Spec.Exe is "".
const script = "#!/bin/sh\nexec sleep 600\n"

// Make writes the bundle s describes in root, which must exist, and
// returns its directory. It fails the test on any error. The bundle is
// written by Make's process (owned by its user); tests that need it owned
// by another user chown it.
func Make(t testing.TB, root string, s Spec) string {
	t.Helper()
	if s.Identifier == "" {
		s.Identifier = "org.example.app"
	}
	if s.Name == "" {
		s.Name = s.Identifier + ".app"
	}
	if s.Executable == "" {
		s.Executable = "app"
	}
	if s.Layout == 0 {
		s.Layout = bundle.Flat
	}
	dir := filepath.Join(root, s.Name)
	base, exeDir := dir, dir
	if s.Layout == bundle.Contents {
		base = filepath.Join(dir, "Contents")
		exeDir = filepath.Join(base, "MacOS")
	}
	mkdir(t, base)
	info := map[string]any{
		"CFBundleIdentifier": s.Identifier,
		"CFBundleExecutable": s.Executable,
	}
	if s.Version != "" {
		info["CFBundleVersion"] = s.Version
	}
	WritePlist(t, filepath.Join(base, "Info.plist"), info)
	mainExe := filepath.Join(exeDir, s.Executable)
	writeExe(t, mainExe, s.Exe)
	mainRel, err := filepath.Rel(dir, mainExe)
	if err != nil {
		t.Fatal(err)
	}

	for _, svc := range s.Services {
		if svc.Name == "" {
			t.Fatal("bundletest: a ServiceSpec needs a Name")
		}
		if svc.Identifier == "" {
			svc.Identifier = s.Identifier + "." + svc.Name
		}
		xd := filepath.Join(base, "XPCServices", svc.Name+".xpc")
		xbase, xexe := xd, xd
		if s.Layout == bundle.Contents {
			xbase = filepath.Join(xd, "Contents")
			xexe = filepath.Join(xbase, "MacOS")
		}
		mkdir(t, xbase)
		keys := map[string]any{"ServiceType": svc.Type.String()}
		if svc.Environment != nil {
			env := map[string]any{}
			for k, v := range svc.Environment {
				env[k] = v
			}
			keys["EnvironmentVariables"] = env
		}
		if svc.JoinExistingSession {
			keys["JoinExistingSession"] = true
		}
		if svc.IdleExitTimeout != 0 {
			keys["IdleExitTimeout"] = int64(svc.IdleExitTimeout / time.Second)
		}
		WritePlist(t, filepath.Join(xbase, "Info.plist"), map[string]any{
			"CFBundleIdentifier": svc.Identifier,
			"CFBundleExecutable": svc.Name,
			"XPCService":         keys,
		})
		writeExe(t, filepath.Join(xexe, svc.Name), s.Exe)
	}

	for sub, list := range map[string][]PlistSpec{"LaunchAgents": s.Agents, "LaunchDaemons": s.Daemons} {
		if len(list) == 0 {
			continue
		}
		ld := filepath.Join(base, "Library", sub)
		mkdir(t, ld)
		for _, p := range list {
			if p.Label == "" {
				t.Fatal("bundletest: a PlistSpec needs a Label")
			}
			name := p.Name
			if name == "" {
				name = p.Label + ".plist"
			}
			keys := map[string]any{"Label": p.Label, "BundleProgram": filepath.ToSlash(mainRel)}
			maps.Copy(keys, p.Extra)
			for k, v := range keys {
				if v == nil {
					delete(keys, k)
				}
			}
			WritePlist(t, filepath.Join(ld, name), keys)
		}
	}
	return dir
}

// WritePlist writes the dictionary m as an XML property list at path,
// mode 0644. Values are as xpc.ValueOf takes them (map[string]any for a
// dictionary), or xpc.Object values.
func WritePlist(t testing.TB, path string, m map[string]any) {
	t.Helper()
	obj, err := xpc.ValueOf(m)
	if err != nil {
		t.Fatalf("bundletest: %s: %v", path, err)
	}
	data, err := xpc.ToPlist(obj, xpc.PlistXML)
	if err != nil {
		t.Fatalf("bundletest: %s: %v", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("bundletest: %v", err)
	}
}

func mkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatalf("bundletest: %v", err)
	}
}

// writeExe writes an executable at path: a copy of src, or the script.
func writeExe(t testing.TB, path, src string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if src == "" {
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatalf("bundletest: %v", err)
		}
		return
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatalf("bundletest: %v", err)
	}
	defer in.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatalf("bundletest: %v", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatalf("bundletest: copying %s: %v", src, err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("bundletest: %v", err)
	}
}

// Chown gives the bundle at dir, and everything in it, to uid and gid,
// for tests of bundles that belong to another user. It changes links
// themselves, never what they point to.
func Chown(t testing.TB, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatalf("bundletest: %v", err)
	}
}
