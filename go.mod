module github.com/goxpc/xpc

go 1.26.0

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
	howett.net/plist v1.0.1
)
