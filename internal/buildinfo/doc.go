// Package buildinfo says which build of goxpc a command is, for its
// --version: the module's version, the commit it was built from and
// whether the tree had changes, and the Go version, as the Go toolchain
// recorded them in the binary (runtime/debug.ReadBuildInfo).
//
// A build the toolchain could not stamp (from a source tarball, or with
// -buildvcs=false) takes the version and commit from the linker instead,
// as the Makefile passes them:
//
//	go build -ldflags "-X github.com/goxpc/xpc/internal/buildinfo.version=v1.2.0 \
//	    -X github.com/goxpc/xpc/internal/buildinfo.commit=0123456789ab \
//	    -X github.com/goxpc/xpc/internal/buildinfo.modified=true"
//
// What the toolchain recorded wins over what the linker was told.
package buildinfo
