module github.com/goxpc/xpc/gen/xpcgen

go 1.26.0

replace github.com/goxpc/xpc => ../..

require golang.org/x/tools v0.52.0

require (
	aead.dev/minisign v0.3.0 // indirect
	golang.org/x/crypto v0.13.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	howett.net/plist v1.0.1 // indirect
)

require (
	github.com/goxpc/xpc v0.0.0-00010101000000-000000000000
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
