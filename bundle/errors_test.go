package bundle_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
)

// info writes an Info.plist at path with keys.
func info(t *testing.T, path string, keys map[string]any) {
	t.Helper()
	bundletest.WritePlist(t, path, keys)
}

// TestReadErrors: every rule Read enforces is refused with ErrBadBundle,
// naming the file at fault and the reason.
func TestReadErrors(t *testing.T) {
	cases := []struct {
		name   string
		layout bundle.Layout
		spec   func(*bundletest.Spec)
		break_ func(t *testing.T, p paths)
		path   func(p paths) string // the path the error names
		reason string
	}{
		{name: "no identifier", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleExecutable": "app"})
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "CFBundleIdentifier missing"},
		{name: "identifier type", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleIdentifier": int64(3), "CFBundleExecutable": "app"})
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "CFBundleIdentifier: want string"},
		{name: "identifier invalid", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleIdentifier": "org/example", "CFBundleExecutable": "app"})
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "CFBundleIdentifier"},
		{name: "identifier with empty part", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleIdentifier": "..", "CFBundleExecutable": "app"})
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "empty part between dots"},
		{name: "no executable key", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app"})
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "CFBundleExecutable missing"},
		{name: "executable dotdot", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app", "CFBundleExecutable": "../outside"})
			os.WriteFile(filepath.Join(p.dir, "../outside"), []byte("#!/bin/sh\n"), 0o755)
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: `no ".."`},
		{name: "executable absolute", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app", "CFBundleExecutable": "/bin/sh"})
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "relative to the bundle"},
		{name: "executable missing", break_: func(t *testing.T, p paths) {
			os.Remove(p.exe)
		}, path: func(p paths) string { return p.exe }, reason: "executable missing"},
		{name: "executable symlink", break_: func(t *testing.T, p paths) {
			os.Remove(p.exe)
			os.Symlink("/bin/sh", p.exe)
		}, path: func(p paths) string { return p.exe }, reason: "symbolic link"},
		{name: "executable directory symlink", spec: func(s *bundletest.Spec) { s.Executable = "bin/app" }, break_: func(t *testing.T, p paths) {
			os.Rename(p.exeDir+"/bin", p.exeDir+"/realbin")
			os.Symlink("realbin", p.exeDir+"/bin")
		}, path: func(p paths) string { return p.exeDir + "/bin" }, reason: "symbolic link"},
		{name: "executable not executable", break_: func(t *testing.T, p paths) {
			os.Chmod(p.exe, 0o644)
		}, path: func(p paths) string { return p.exe }, reason: "no execute permission"},
		{name: "executable directory", break_: func(t *testing.T, p paths) {
			os.Remove(p.exe)
			os.Mkdir(p.exe, 0o755)
		}, path: func(p paths) string { return p.exe }, reason: "not a regular file"},
		{name: "Info.plist symlink", break_: func(t *testing.T, p paths) {
			os.Rename(p.base+"/Info.plist", p.dir+"/../elsewhere.plist")
			os.Symlink(p.dir+"/../elsewhere.plist", p.base+"/Info.plist")
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "symbolic link"},
		{name: "Contents symlink", layout: bundle.Contents, break_: func(t *testing.T, p paths) {
			os.Rename(p.dir+"/Contents", p.dir+"/../Contents")
			os.Symlink("../Contents", p.dir+"/Contents")
		}, path: func(p paths) string { return p.dir + "/Contents" }, reason: "symbolic link"},
		{name: "Info.plist FIFO", break_: func(t *testing.T, p paths) {
			os.Remove(p.base + "/Info.plist")
			if err := syscall.Mkfifo(p.base+"/Info.plist", 0o644); err != nil {
				t.Fatal(err)
			}
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "not a regular file (a FIFO)"},
		{name: "Info.plist too large", break_: func(t *testing.T, p paths) {
			os.WriteFile(p.base+"/Info.plist", make([]byte, bundle.MaxInfoPlistSize+1), 0o644)
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "larger than"},
		{name: "Info.plist junk", break_: func(t *testing.T, p paths) {
			os.WriteFile(p.base+"/Info.plist", []byte("<plist><dict><key>"), 0o644)
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "not a property list"},
		{name: "Info.plist not a dictionary", break_: func(t *testing.T, p paths) {
			os.WriteFile(p.base+"/Info.plist", []byte(`<plist><array/></plist>`), 0o644)
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "not a dictionary"},
		{name: "version type", break_: func(t *testing.T, p paths) {
			info(t, p.base+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app", "CFBundleExecutable": "app", "CFBundleVersion": true})
		}, path: func(p paths) string { return p.base + "/Info.plist" }, reason: "CFBundleVersion: want string"},
		{name: "both layouts", layout: bundle.Flat, break_: func(t *testing.T, p paths) {
			os.Mkdir(p.dir+"/Contents", 0o755)
			info(t, p.dir+"/Contents/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app", "CFBundleExecutable": "app"})
		}, path: func(p paths) string { return p.dir }, reason: "both Info.plist and Contents/Info.plist"},
		{name: "bad ServiceType", spec: withService, break_: func(t *testing.T, p paths) {
			serviceInfo(t, p, map[string]any{"ServiceType": "Global"})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: `ServiceType "Global"`},
		{name: "ServiceType type", spec: withService, break_: func(t *testing.T, p paths) {
			serviceInfo(t, p, map[string]any{"ServiceType": int64(1)})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: "ServiceType: want string"},
		{name: "XPCService type", spec: withService, break_: func(t *testing.T, p paths) {
			info(t, p.svc+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app.S", "CFBundleExecutable": "S", "XPCService": "yes"})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: "XPCService: want dictionary"},
		{name: "environment value", spec: withService, break_: func(t *testing.T, p paths) {
			serviceInfo(t, p, map[string]any{"EnvironmentVariables": map[string]any{"A": int64(1)}})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: "EnvironmentVariables.A: want string"},
		{name: "environment name", spec: withService, break_: func(t *testing.T, p paths) {
			serviceInfo(t, p, map[string]any{"EnvironmentVariables": map[string]any{"A=B": "1"}})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: `variable name "A=B"`},
		{name: "idle exit negative", spec: withService, break_: func(t *testing.T, p paths) {
			serviceInfo(t, p, map[string]any{"IdleExitTimeout": int64(-1)})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: "IdleExitTimeout: want 0 to"},
		{name: "join session type", spec: withService, break_: func(t *testing.T, p paths) {
			serviceInfo(t, p, map[string]any{"JoinExistingSession": "yes"})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: "JoinExistingSession: want bool"},
		{name: "service executable outside", spec: withService, break_: func(t *testing.T, p paths) {
			info(t, p.svc+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app.S", "CFBundleExecutable": "../../app"})
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: `no ".."`},
		{name: "service executable symlink", spec: withService, break_: func(t *testing.T, p paths) {
			os.Remove(p.svcExe)
			os.Symlink(p.exe, p.svcExe)
		}, path: func(p paths) string { return p.svcExe }, reason: "symbolic link"},
		{name: "service directory symlink", spec: withService, break_: func(t *testing.T, p paths) {
			os.Rename(p.base+"/XPCServices/S.xpc", p.dir+"/../S.xpc")
			os.Symlink(p.dir+"/../S.xpc", p.base+"/XPCServices/S.xpc")
		}, path: func(p paths) string { return p.base + "/XPCServices/S.xpc" }, reason: "symbolic link"},
		{name: "service not a directory", break_: func(t *testing.T, p paths) {
			os.MkdirAll(p.base+"/XPCServices", 0o755)
			os.WriteFile(p.base+"/XPCServices/S.xpc", nil, 0o644)
		}, path: func(p paths) string { return p.base + "/XPCServices/S.xpc" }, reason: "not a directory"},
		{name: "service without Info.plist", break_: func(t *testing.T, p paths) {
			os.MkdirAll(p.svc, 0o755)
		}, path: func(p paths) string { return p.svc + "/Info.plist" }, reason: "Info.plist missing"},
		{name: "service is the app", spec: withService, break_: func(t *testing.T, p paths) {
			info(t, p.svc+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app", "CFBundleExecutable": "S"})
		}, path: func(p paths) string { return p.base + "/XPCServices/S.xpc" }, reason: "is the application's"},
		{name: "duplicate service", spec: func(s *bundletest.Spec) {
			s.Services = []bundletest.ServiceSpec{{Name: "A", Identifier: "org.example.same"}, {Name: "B", Identifier: "org.example.same"}}
		}, path: func(p paths) string { return p.base + "/XPCServices/B.xpc" }, reason: "also that of"},
		{name: "too many services", spec: func(s *bundletest.Spec) {
			for i := range bundle.MaxServices + 1 {
				s.Services = append(s.Services, bundletest.ServiceSpec{Name: fmt.Sprint("S", i)})
			}
		}, path: func(p paths) string { return p.base + "/XPCServices" }, reason: fmt.Sprintf("more than %d XPC services", bundle.MaxServices)},
		{name: "too many entries", break_: func(t *testing.T, p paths) {
			os.MkdirAll(p.base+"/XPCServices", 0o755)
			for i := range 1025 {
				os.WriteFile(fmt.Sprintf("%s/XPCServices/junk%d", p.base, i), nil, 0o644)
			}
		}, path: func(p paths) string { return p.base + "/XPCServices" }, reason: "more than 1024 entries"},
		{name: "too many agents", spec: func(s *bundletest.Spec) {
			for i := range bundle.MaxLaunchPlists + 1 {
				s.Agents = append(s.Agents, bundletest.PlistSpec{Label: fmt.Sprint("org.example.a", i)})
			}
		}, path: func(p paths) string { return p.base + "/Library/LaunchAgents" }, reason: fmt.Sprintf("more than %d plists", bundle.MaxLaunchPlists)},
		{name: "plist FIFO", spec: withAgent, break_: func(t *testing.T, p paths) {
			if err := syscall.Mkfifo(p.base+"/Library/LaunchAgents/fifo.plist", 0o644); err != nil {
				t.Fatal(err)
			}
		}, path: func(p paths) string { return p.base + "/Library/LaunchAgents/fifo.plist" }, reason: "not a regular file (a FIFO)"},
		{name: "plist symlink", spec: withAgent, break_: func(t *testing.T, p paths) {
			os.Rename(p.base+"/Library/LaunchAgents/org.example.agent.plist", p.dir+"/../x.plist")
			os.Symlink(p.dir+"/../x.plist", p.base+"/Library/LaunchAgents/org.example.agent.plist")
		}, path: func(p paths) string { return p.base + "/Library/LaunchAgents/org.example.agent.plist" }, reason: "symbolic link"},
		{name: "plist invalid", spec: func(s *bundletest.Spec) {
			s.Daemons = []bundletest.PlistSpec{{Label: "org.example.d", Extra: map[string]any{"RunAtLoad": "yes"}}}
		}, path: func(p paths) string { return p.base + "/Library/LaunchDaemons/org.example.d.plist" }, reason: "RunAtLoad: want bool"},
		{name: "plist without BundleProgram", spec: func(s *bundletest.Spec) {
			s.Agents = []bundletest.PlistSpec{{Label: "org.example.a", Extra: map[string]any{"BundleProgram": nil, "ProgramArguments": []string{"/bin/sh"}}}}
		}, path: func(p paths) string { return p.base + "/Library/LaunchAgents/org.example.a.plist" }, reason: "no BundleProgram"},
		{name: "plist with Program", spec: func(s *bundletest.Spec) {
			s.Agents = []bundletest.PlistSpec{{Label: "org.example.a", Extra: map[string]any{"Program": "/bin/sh"}}}
		}, path: func(p paths) string { return p.base + "/Library/LaunchAgents/org.example.a.plist" }, reason: "Program beside BundleProgram"},
		{name: "plist BundleProgram outside", spec: func(s *bundletest.Spec) {
			s.Agents = []bundletest.PlistSpec{{Label: "org.example.a", Extra: map[string]any{"BundleProgram": "../app"}}}
		}, path: func(p paths) string { return p.base + "/Library/LaunchAgents/org.example.a.plist" }, reason: `no ".."`},
		{name: "plist BundleProgram missing", spec: func(s *bundletest.Spec) {
			s.Agents = []bundletest.PlistSpec{{Label: "org.example.a", Extra: map[string]any{"BundleProgram": "bin/nothing"}}}
		}, path: func(p paths) string { return p.dir + "/bin/nothing" }, reason: "executable missing"},
		{name: "plist BundleProgram not executable", spec: func(s *bundletest.Spec) {
			s.Agents = []bundletest.PlistSpec{{Label: "org.example.a", Extra: map[string]any{"BundleProgram": "data"}}}
		}, break_: func(t *testing.T, p paths) {
			os.WriteFile(p.dir+"/data", nil, 0o644)
		}, path: func(p paths) string { return p.dir + "/data" }, reason: "no execute permission"},
		{name: "duplicate labels", spec: func(s *bundletest.Spec) {
			s.Daemons = []bundletest.PlistSpec{{Name: "a.plist", Label: "org.example.d"}, {Name: "b.plist", Label: "org.example.d"}}
		}, path: func(p paths) string { return p.base + "/Library/LaunchDaemons/b.plist" }, reason: "also that of a.plist"},
		{name: "Library not a directory", break_: func(t *testing.T, p paths) {
			os.WriteFile(p.base+"/Library", nil, 0o644)
		}, path: func(p paths) string { return p.base + "/Library" }, reason: "not a directory"},
	}
	for _, c := range cases {
		for _, layout := range []bundle.Layout{bundle.Flat, bundle.Contents} {
			if c.layout != 0 && c.layout != layout {
				continue
			}
			t.Run(c.name+"/"+layout.String(), func(t *testing.T) {
				spec := bundletest.Spec{Identifier: "org.example.app", Layout: layout}
				if c.spec != nil {
					c.spec(&spec)
				}
				dir := bundletest.Make(t, t.TempDir(), spec)
				p := pathsOf(dir, layout)
				if c.break_ != nil {
					c.break_(t, p)
				}
				fds := openFDs(t)
				done := make(chan struct{})
				var err error
				go func() {
					defer close(done)
					_, err = bundle.Read(dir)
				}()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("Read hangs")
				}
				if n := openFDs(t); n != fds {
					t.Errorf("%d descriptors open after Read, %d before", n, fds)
				}
				want := c.path(p)
				var be *bundle.Error
				switch {
				case err == nil:
					t.Fatal("no error")
				case !errors.Is(err, bundle.ErrBadBundle):
					t.Errorf("%v: not ErrBadBundle", err)
				case !errors.As(err, &be) || be.Path != want:
					t.Errorf("%v: want it to name %s", err, want)
				case !strings.Contains(err.Error(), c.reason):
					t.Errorf("%v: want it to say %q", err, c.reason)
				}
			})
		}
	}
}

func withService(s *bundletest.Spec) { s.Services = []bundletest.ServiceSpec{{Name: "S"}} }

func withAgent(s *bundletest.Spec) {
	s.Agents = []bundletest.PlistSpec{{Label: "org.example.agent"}}
}

// paths are where a bundle made by bundletest.Make keeps its files.
type paths struct {
	dir, base   string // the root; where Info.plist is
	exeDir, exe string // where executables are; the main one
	svc, svcExe string // where service S keeps its Info.plist; its executable
}

func pathsOf(dir string, layout bundle.Layout) paths {
	if layout == bundle.Contents {
		b := dir + "/Contents"
		s := b + "/XPCServices/S.xpc/Contents"
		return paths{dir, b, b + "/MacOS", b + "/MacOS/app", s, s + "/MacOS/S"}
	}
	s := dir + "/XPCServices/S.xpc"
	return paths{dir, dir, dir, dir + "/app", s, s + "/S"}
}

// serviceInfo rewrites service S's Info.plist with these XPCService keys.
func serviceInfo(t *testing.T, p paths, keys map[string]any) {
	info(t, p.svc+"/Info.plist", map[string]any{"CFBundleIdentifier": "org.example.app.S", "CFBundleExecutable": "S", "XPCService": keys})
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
