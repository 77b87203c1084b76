package bundle_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
)

// fullSpec is a bundle with two services and a plist of each kind.
func fullSpec(layout bundle.Layout) bundletest.Spec {
	return bundletest.Spec{
		Identifier: "org.example.app",
		Layout:     layout,
		Version:    "1.2.3",
		Services: []bundletest.ServiceSpec{
			{Name: "Zeta", Identifier: "org.example.app.zeta", Type: bundle.System},
			{Name: "Helper", Identifier: "org.example.app.helper", Type: bundle.User,
				Environment: map[string]string{"A": "1", "B": "two"}, JoinExistingSession: true, IdleExitTimeout: 30 * time.Second},
			{Name: "Plain"},
		},
		Agents: []bundletest.PlistSpec{
			{Label: "org.example.app.agent", Extra: map[string]any{"MachServices": map[string]any{"org.example.app.agent": true}}},
			{Name: "a-first.plist", Label: "org.example.app.agent2"},
		},
		Daemons: []bundletest.PlistSpec{{Label: "org.example.app.daemon"}},
	}
}

func TestReadLayouts(t *testing.T) {
	for _, layout := range []bundle.Layout{bundle.Flat, bundle.Contents} {
		t.Run(layout.String(), func(t *testing.T) {
			dir := bundletest.Make(t, t.TempDir(), fullSpec(layout))
			b, err := bundle.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			base, exeDir := dir, dir
			if layout == bundle.Contents {
				base = filepath.Join(dir, "Contents")
				exeDir = filepath.Join(base, "MacOS")
			}
			if b.Root != dir || b.Layout != layout || b.Identifier != "org.example.app" || b.Version != "1.2.3" ||
				b.Executable != filepath.Join(exeDir, "app") {
				t.Errorf("bundle %+v", b)
			}
			var ids []string
			for _, s := range b.Services {
				ids = append(ids, s.Identifier)
			}
			if got := strings.Join(ids, " "); got != "org.example.app.Plain org.example.app.helper org.example.app.zeta" {
				t.Errorf("services %s, want sorted by identifier", got)
			}
			h := b.Service("org.example.app.helper")
			if h == nil {
				t.Fatal("Service(helper) = nil")
			}
			hexe := filepath.Join(base, "XPCServices", "Helper.xpc", "Helper")
			if layout == bundle.Contents {
				hexe = filepath.Join(base, "XPCServices", "Helper.xpc", "Contents", "MacOS", "Helper")
			}
			if h.Name != "Helper" || h.Dir != filepath.Join(base, "XPCServices", "Helper.xpc") || h.Executable != hexe ||
				h.Type != bundle.User || !maps.Equal(h.Environment, map[string]string{"A": "1", "B": "two"}) ||
				!h.JoinExistingSession || h.IdleExitTimeout != 30*time.Second {
				t.Errorf("helper %+v", h)
			}
			if z := b.Service("org.example.app.zeta"); z == nil || z.Type != bundle.System || z.Environment != nil || z.IdleExitTimeout != 0 {
				t.Errorf("zeta %+v", z)
			}
			if p := b.Service("org.example.app.Plain"); p == nil || p.Type != bundle.Application {
				t.Errorf("plain %+v", p)
			}
			if b.Service("org.example.app") != nil || b.Service("nope") != nil {
				t.Error("Service finds what is not a service")
			}
			if len(b.Agents) != 2 || b.Agents[0].Name != "a-first.plist" || b.Agents[1].Name != "org.example.app.agent.plist" {
				t.Fatalf("agents %v", b.Agents)
			}
			a := b.Agent("org.example.app.agent.plist")
			if a == nil || a.Path != filepath.Join(base, "Library", "LaunchAgents", "org.example.app.agent.plist") ||
				a.Job.Label != "org.example.app.agent" || a.Job.Program != b.Executable || a.Job.Executable() != b.Executable ||
				a.Job.Path != a.Path {
				t.Errorf("agent %+v", a)
			}
			if _, ok := a.Job.MachServices["org.example.app.agent"]; !ok {
				t.Errorf("agent MachServices %v", a.Job.MachServices)
			}
			wantBP := "app"
			if layout == bundle.Contents {
				wantBP = "Contents/MacOS/app"
			}
			if a.Job.BundleProgram != wantBP {
				t.Errorf("BundleProgram %q, want %q", a.Job.BundleProgram, wantBP)
			}
			if err := a.Job.Validate(); err != nil {
				t.Errorf("resolved job does not validate: %v", err)
			}
			if d := b.Daemon("org.example.app.daemon.plist"); d == nil || d.Job.Program != b.Executable {
				t.Errorf("daemon %+v", d)
			}
			if b.Daemon("org.example.app.agent.plist") != nil || b.Agent("nope.plist") != nil {
				t.Error("Agent/Daemon find what is not there")
			}
		})
	}
}

// TestReadRelativeAndMinimal: a relative directory is made absolute; a
// bundle with only an Info.plist and an executable in a subdirectory
// reads, with no services or plists.
func TestReadRelativeAndMinimal(t *testing.T) {
	root := t.TempDir()
	dir := bundletest.Make(t, root, bundletest.Spec{Identifier: "org.example.min", Executable: "bin/x/app"})
	t.Chdir(root)
	b, err := bundle.Read("org.example.min.app/")
	if err != nil {
		t.Fatal(err)
	}
	if b.Root != dir || b.Executable != filepath.Join(dir, "bin/x/app") || b.Version != "" ||
		b.Services != nil || b.Agents != nil || b.Daemons != nil {
		t.Errorf("%+v", b)
	}
}

func TestLayoutStrings(t *testing.T) {
	for v, want := range map[string]string{
		bundle.Flat.String(): "Flat", bundle.Contents.String(): "Contents", bundle.Layout(0).String(): "Layout(0)",
		bundle.Application.String(): "Application", bundle.User.String(): "User", bundle.System.String(): "System",
		bundle.ServiceType(7).String(): "ServiceType(7)",
	} {
		if v != want {
			t.Errorf("%q, want %q", v, want)
		}
	}
	for _, s := range []string{"Application", "User", "System"} {
		st, err := bundle.ParseServiceType(s)
		if err != nil || st.String() != s {
			t.Errorf("ParseServiceType(%q) = %v, %v", s, st, err)
		}
	}
	if _, err := bundle.ParseServiceType("application"); !errors.Is(err, bundle.ErrBadBundle) {
		t.Errorf("lower case: %v", err)
	}
}

func TestNotBundle(t *testing.T) {
	dir := t.TempDir()
	_, err := bundle.Read(dir)
	var be *bundle.Error
	if !errors.Is(err, bundle.ErrNotBundle) || !errors.As(err, &be) || be.Path != dir || !strings.HasPrefix(err.Error(), "bundle: "+dir+": ") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := bundle.Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := bundle.Read(""); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("empty name: %v", err)
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := bundle.Read(f); err == nil {
		t.Error("a file reads as a bundle")
	}
}

func TestCheckIdentifier(t *testing.T) {
	for _, id := range []string{"org.example.app", "a", "com.example.my-app_2", "A.B.C"} {
		if err := bundle.CheckIdentifier(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", ".org.example", "org.example.", "org..example", "org/example", "org example", "été.org", strings.Repeat("a", 128)} {
		if err := bundle.CheckIdentifier(id); !errors.Is(err, bundle.ErrBadBundle) {
			t.Errorf("%q: %v, want ErrBadBundle", id, err)
		}
	}
}

// TestInfoPlistFormats: Info.plist may be XML, binary or text.
func TestInfoPlistFormats(t *testing.T) {
	keys, err := xpc.ValueOf(map[string]any{"CFBundleIdentifier": "org.example.fmt", "CFBundleExecutable": "app", "CFBundleVersion": "3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"xml", "binary", "text"} {
		t.Run(format, func(t *testing.T) {
			dir := bundletest.Make(t, t.TempDir(), bundletest.Spec{Identifier: "org.example.fmt"})
			var data []byte
			switch format {
			case "xml":
				data, err = xpc.ToPlist(keys, xpc.PlistXML)
			case "binary":
				data, err = xpc.ToPlist(keys, xpc.PlistBinary)
			case "text":
				// Written by hand: the OpenStep format is read, not written.
				data = []byte(`{ CFBundleIdentifier = org.example.fmt; CFBundleExecutable = "app"; CFBundleVersion = "3"; }`)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "Info.plist"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := bundle.Read(dir)
			if err != nil || b.Identifier != "org.example.fmt" || b.Version != "3" {
				t.Fatalf("%+v, %v", b, err)
			}
		})
	}
}
