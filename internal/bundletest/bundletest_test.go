package bundletest_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/goxpc/xpc/bundle"
	"github.com/goxpc/xpc/internal/bundletest"
)

// TestMake: what Make writes Reads back as specified, in both layouts,
// with copies of Exe.
func TestMake(t *testing.T) {
	for _, layout := range []bundle.Layout{bundle.Flat, bundle.Contents} {
		t.Run(layout.String(), func(t *testing.T) {
			dir := bundletest.Make(t, t.TempDir(), bundletest.Spec{
				Identifier: "org.example.mk", Layout: layout, Version: "2", Exe: "/bin/true",
				Services: []bundletest.ServiceSpec{{Name: "S", Type: bundle.User, Environment: map[string]string{"K": "v"}}},
				Agents:   []bundletest.PlistSpec{{Label: "org.example.mk.agent", Extra: map[string]any{"RunAtLoad": true}}},
				Daemons:  []bundletest.PlistSpec{{Name: "d.plist", Label: "org.example.mk.daemon"}},
			})
			if filepath.Base(dir) != "org.example.mk.app" {
				t.Errorf("dir %s", dir)
			}
			b, err := bundle.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			s := b.Service("org.example.mk.S")
			if b.Layout != layout || b.Version != "2" || s == nil || s.Type != bundle.User || s.Environment["K"] != "v" ||
				b.Agent("org.example.mk.agent.plist") == nil || !b.Agent("org.example.mk.agent.plist").Job.RunAtLoad ||
				b.Daemon("d.plist") == nil || b.Daemon("d.plist").Job.Program != b.Executable {
				t.Fatalf("%+v", b)
			}
			want, _ := os.ReadFile("/bin/true")
			for _, exe := range []string{b.Executable, s.Executable} {
				got, err := os.ReadFile(exe)
				if err != nil || string(got) != string(want) {
					t.Errorf("%s is not a copy of /bin/true", exe)
				}
			}
			if os.Geteuid() == 0 {
				bundletest.Chown(t, dir, 65534, 65534)
				var st syscall.Stat_t
				if err := syscall.Lstat(s.Executable, &st); err != nil || st.Uid != 65534 {
					t.Errorf("Chown: %v %d", err, st.Uid)
				}
			}
		})
	}
}
