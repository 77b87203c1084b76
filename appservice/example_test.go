package appservice_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goxpc/xpc/appservice"
	"github.com/goxpc/xpc/xpctest"
)

const infoPlist = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CFBundleIdentifier</key><string>org.example.hello</string>
<key>CFBundleExecutable</key><string>hello</string>
</dict></plist>
`

// An application registers itself to start at the user's login, and
// watches its status.
func Example() {
	// A private xpcd, and a bundle in a temporary directory: a real
	// application leaves out WithBootstrapSocket and names its own
	// bundle (bundle.Find of os.Executable()).
	srv, err := xpctest.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "Hello.app")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "Info.plist"), []byte(infoPlist), 0o644)
	os.WriteFile(filepath.Join(root, "hello"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755)

	ctx := context.Background()
	app := appservice.MainApp(root, appservice.WithBootstrapSocket(srv.Socket))
	if err := app.Register(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := app.Status(ctx)
	fmt.Println(st)
	if err := app.Unregister(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for st, err := range app.Watch(ctx) {
		fmt.Println(st, err)
		break // the status now; a real application would keep watching
	}
	// Output:
	// enabled
	// not-registered <nil>
}
