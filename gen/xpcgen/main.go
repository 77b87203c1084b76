// Command xpcgen writes the XPC client and server of Go interfaces: for
// each interface named with -type (Weather, say), a client
// (NewWeatherClient) that implements the interface by calling a service
// over a typed.Conn, and a server (NewWeatherServer) that dispatches a
// service's requests to an implementation.
// Both are one file, written in the interfaces' package and run by
// go generate:
//
//	//go:generate go -C ../../gen/xpcgen run . -dir $PWD -type Weather,Progress
//
// (go -C runs the command in its own module, which holds its
// dependencies; -dir $PWD brings it back to the package go generate runs
// in). docs/TYPED.md gives the rules the interfaces must follow, the wire
// form of a call and the versioning rules.
//
// Usage:
//
//	xpcgen [-dir DIR] [-o FILE] -type Name[,Name...]
//
// -dir is the package's directory (default "."); -o the output file's name
// in it (default the first type's name in lower case followed by
// "_xpc.go"). A method that breaks a rule is an error naming the method and
// the parameter or result; xpcgen never skips one.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	dir := flag.String("dir", ".", "the package's directory")
	out := flag.String("o", "", "the output file's name (default <first type>_xpc.go)")
	types := flag.String("type", "", "comma-separated names of the interfaces to generate for")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: xpcgen [-dir DIR] [-o FILE] -type Name[,Name...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *types == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	names := strings.Split(*types, ",")
	if *out == "" {
		*out = defaultOutput(names)
	}
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		// Under go -C the working directory is the generator's, so a
		// relative -dir is read from there, not from the package.
		wd, _ := os.Getwd()
		fmt.Fprintf(os.Stderr, "xpcgen: -dir %s: not a directory (read from %s; give the package's directory, e.g. -dir $PWD under go generate)\n", *dir, wd)
		os.Exit(2)
	}
	src, err := Generate(*dir, *out, names)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(filepath.Join(*dir, *out), src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "xpcgen:", err)
		os.Exit(1)
	}
}

// defaultOutput is the output file's name when -o is not given.
func defaultOutput(names []string) string {
	return strings.ToLower(names[0]) + "_xpc.go"
}
