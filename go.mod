module github.com/goxpc/xpc

go 1.26.0

require (
	aead.dev/minisign v0.3.0
	github.com/godbus/dbus/v5 v5.2.4
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
	howett.net/plist v1.0.1
)

require golang.org/x/crypto v0.13.0 // indirect
