// Package buildinfo says which build of goxpc a command is, for its
// --version: the module's version, the commit it was built from and
// whether the tree had changes, and the Go version, as the Go toolchain
// recorded them in the binary (runtime/debug.ReadBuildInfo).
package buildinfo
