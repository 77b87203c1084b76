package bundle_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
)

func TestFind(t *testing.T) {
	for _, layout := range []bundle.Layout{bundle.Flat, bundle.Contents} {
		t.Run(layout.String(), func(t *testing.T) {
			spec := fullSpec(layout)
			spec.Executable = "bin/deep/app"
			dir := bundletest.Make(t, t.TempDir(), spec)
			b, err := bundle.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			exes := []string{b.Executable}
			for _, s := range b.Services {
				exes = append(exes, s.Executable)
			}
			for _, exe := range exes {
				root, err := bundle.Find(exe)
				if err != nil || root != dir {
					t.Errorf("Find(%s) = %q, %v; want %s", exe, root, err, dir)
				}
			}
			// Files in the bundle that are no executable of it.
			base := dir
			if layout == bundle.Contents {
				base = dir + "/Contents"
			}
			other := filepath.Join(filepath.Dir(b.Executable), "other")
			if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{other, base + "/Info.plist", b.Agents[0].Path} {
				if root, err := bundle.Find(p); !errors.Is(err, bundle.ErrNotBundle) {
					t.Errorf("Find(%s) = %q, %v; want ErrNotBundle", p, root, err)
				}
			}
		})
	}
}

// TestFindLookAlike: a program placed where a bundle's executable would
// be, in a directory that has no Info.plist, or whose Info.plist names
// another executable, or a hard link of the real executable elsewhere, is
// not in a bundle.
func TestFindLookAlike(t *testing.T) {
	root := t.TempDir()
	dir := bundletest.Make(t, root, bundletest.Spec{Identifier: "org.example.real", Services: []bundletest.ServiceSpec{{Name: "S"}}})

	// Same layout, no Info.plist.
	fake := filepath.Join(root, "Fake.app")
	os.MkdirAll(fake+"/XPCServices/S.xpc", 0o755)
	os.WriteFile(fake+"/app", []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(fake+"/XPCServices/S.xpc/S", []byte("#!/bin/sh\n"), 0o755)
	for _, p := range []string{fake + "/app", fake + "/XPCServices/S.xpc/S"} {
		if r, err := bundle.Find(p); !errors.Is(err, bundle.ErrNotBundle) {
			t.Errorf("Find(%s) = %q, %v; want ErrNotBundle", p, r, err)
		}
	}
	// A service directory with an Info.plist of its own is not a root.
	if r, err := bundle.Find(dir + "/XPCServices/S.xpc/S"); err != nil || r != dir {
		t.Errorf("service: %q, %v", r, err)
	}
	// A hard link to the real executable, outside the bundle.
	link := filepath.Join(root, "app")
	if err := os.Link(dir+"/app", link); err != nil {
		t.Fatal(err)
	}
	if r, err := bundle.Find(link); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("hard link: %q, %v", r, err)
	}
	// Not absolute; missing; a directory.
	if _, err := bundle.Find("org.example.real.app/app"); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("relative: %v", err)
	}
	if _, err := bundle.Find(dir + "/nothing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if _, err := bundle.Find(dir + "/XPCServices"); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("directory: %v", err)
	}
	// A broken bundle says so rather than "not a bundle".
	os.Chmod(dir+"/XPCServices/S.xpc/S", 0o644)
	if _, err := bundle.Find(dir + "/app"); !errors.Is(err, bundle.ErrBadBundle) {
		t.Errorf("broken bundle: %v, want ErrBadBundle", err)
	}
}

// TestFindFile: what a running program's executable is decides, not what
// its path holds now: a bundle whose executable was replaced after the
// program started does not claim the program.
func TestFindFile(t *testing.T) {
	dir := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.app"})
	exe := dir + "/app"
	running, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := bundle.FindFile(exe, running); err != nil || r != dir {
		t.Fatalf("FindFile = %q, %v", r, err)
	}
	if b, err := bundle.FindBundle(exe, running); err != nil || b.Root != dir || b.Executable != exe || b.Identifier != "org.example.app" {
		t.Fatalf("FindBundle = %+v, %v", b, err)
	}
	// Replaced: a new file at the same path.
	os.Rename(exe, dir+"/old")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r, err := bundle.FindFile(exe, running); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("replaced: %q, %v; want ErrNotBundle", r, err)
	}
	if r, err := bundle.Find(exe); err != nil || r != dir {
		t.Errorf("Find of the new file = %q, %v", r, err)
	}
	if _, err := bundle.FindFile(exe, nil); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("nil FileInfo: %v", err)
	}
}
