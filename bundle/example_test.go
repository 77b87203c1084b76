package bundle_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/goxpc/xpc/bundle"
)

// A Flat bundle with one XPC service: Read finds the service by the name
// clients look up, and Find tells which bundle an executable belongs to.
func Example() {
	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "Example.app")
	write := func(rel, data string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), mode)
	}
	write("Info.plist", `<plist version="1.0"><dict>
	<key>CFBundleIdentifier</key><string>org.example.app</string>
	<key>CFBundleExecutable</key><string>bin/app</string>
	<key>CFBundleVersion</key><string>1.0</string>
</dict></plist>`, 0o644)
	write("bin/app", "#!/bin/sh\n", 0o755)
	write("XPCServices/Helper.xpc/Info.plist", `<plist version="1.0"><dict>
	<key>CFBundleIdentifier</key><string>org.example.app.helper</string>
	<key>CFBundleExecutable</key><string>helper</string>
	<key>XPCService</key><dict>
		<key>ServiceType</key><string>Application</string>
		<key>IdleExitTimeout</key><integer>30</integer>
	</dict>
</dict></plist>`, 0o644)
	write("XPCServices/Helper.xpc/helper", "#!/bin/sh\n", 0o755)

	b, err := bundle.Read(root)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Identifier, b.Version, b.Layout)
	s := b.Service("org.example.app.helper")
	fmt.Println(s.Name, s.Type, s.IdleExitTimeout)

	found, err := bundle.Find(s.Executable)
	fmt.Println(found == root, err)
	// Output:
	// org.example.app 1.0 Flat
	// Helper Application 30s
	// true <nil>
}
