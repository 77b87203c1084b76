package bundle_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
	"github.com/goxpc/xpc/launchd"
)

// FuzzInfoPlist reads bundles whose Info.plist (the application's, and a
// service's) holds hostile bytes: Read must never panic, and must either
// succeed with valid values or fail with a typed *Error.
func FuzzInfoPlist(f *testing.F) {
	good := map[string]any{"CFBundleIdentifier": "org.example.app", "CFBundleExecutable": "app", "CFBundleVersion": "1",
		"XPCService": map[string]any{"ServiceType": "User", "EnvironmentVariables": map[string]any{"A": "b"}, "IdleExitTimeout": int64(5), "JoinExistingSession": true}}
	obj, err := xpc.ValueOf(good)
	if err != nil {
		f.Fatal(err)
	}
	for _, format := range []xpc.PlistFormat{xpc.PlistXML, xpc.PlistBinary, xpc.PlistOpenStep} {
		data, err := xpc.ToPlist(obj, format)
		if err != nil {
			continue
		}
		f.Add(data)
	}
	f.Add([]byte(`{CFBundleIdentifier = "org.example.app"; CFBundleExecutable = "../app";}`))
	f.Add([]byte(`<plist><dict><key>CFBundleIdentifier</key><string>a</string><key>CFBundleExecutable</key><string>app</string><key>XPCService</key><dict><key>ServiceType</key><string>Bogus</string></dict></dict></plist>`))
	f.Add([]byte("bplist00"))
	f.Add([]byte{})

	dir := bundletest.Make(f, f.TempDir(), bundletest.Spec{Identifier: "org.example.host", Services: []bundletest.ServiceSpec{{Name: "app"}}})
	mainInfo := filepath.Join(dir, "Info.plist")
	svcInfo := filepath.Join(dir, "XPCServices", "app.xpc", "Info.plist")
	goodMain, err := os.ReadFile(mainInfo)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []struct{ path, restore string }{{mainInfo, ""}, {svcInfo, mainInfo}} {
			if err := os.WriteFile(c.path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if c.restore != "" {
				if err := os.WriteFile(c.restore, goodMain, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := bundle.Read(dir)
			if err != nil {
				var be *bundle.Error
				if !errors.As(err, &be) || !(errors.Is(err, bundle.ErrBadBundle) || errors.Is(err, bundle.ErrNotBundle)) {
					t.Fatalf("untyped error: %v", err)
				}
				continue
			}
			if launchd.CheckServiceName(b.Identifier) != nil || b.Executable != dir+"/app" {
				t.Fatalf("accepted %+v", b)
			}
			for _, s := range b.Services {
				if launchd.CheckServiceName(s.Identifier) != nil || s.Identifier == b.Identifier || s.Type < bundle.Application || s.Type > bundle.System || s.IdleExitTimeout < 0 {
					t.Fatalf("accepted service %+v", s)
				}
			}
		}
	})
}
