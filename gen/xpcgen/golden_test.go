package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

var update = flag.Bool("update", false, "rewrite the golden files from the generator's output")

// TestGolden generates the golden inputs and compares the result with the
// files checked in (go test -update rewrites them).
func TestGolden(t *testing.T) {
	cases := []struct {
		dir   string
		types []string
	}{
		{"basic", []string{"Store", "Visitor"}},
		{"names", []string{"Clash"}},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", tc.dir)
			got, err := Generate(dir, defaultOutput(tc.types), tc.types)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(dir, "want_xpc.go.golden"), got)
			checkCompiles(t, dir, defaultOutput(tc.types), got)
		})
	}
}

// TestRefused checks each refused interface's error, the method and the
// position it names, against testdata/refused/refused.golden.
func TestRefused(t *testing.T) {
	names := []string{"NoContext", "ContextSecond", "NotLastError", "NoError", "Variadic", "Channel", "Func",
		"Complex", "OtherInterface", "ErrorArgument", "IntKeys", "OneWayCallback,Callback", "CallbackResult,Callback",
		"Generic", "Empty", "NotAnInterface", "Missing", "Taken", "Several"}
	dir := filepath.Join("testdata", "refused")
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, n := range names {
		types := strings.Split(n, ",")
		_, err := Generate(dir, defaultOutput(types), types)
		if err == nil {
			t.Errorf("%s: generated, want an error", n)
			continue
		}
		b.WriteString(n + ": " + strings.ReplaceAll(err.Error(), abs+string(filepath.Separator), "") + "\n")
	}
	checkGolden(t, filepath.Join(dir, "refused.golden"), b.Bytes())
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date (go test -update rewrites it); got:\n%s", path, got)
	}
}

// checkCompiles type-checks the package in dir with src as its file out.
func checkCompiles(t *testing.T, dir, out string, src []byte) {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &packages.Config{Mode: packages.NeedTypes | packages.NeedName, Dir: abs,
		Overlay: map[string][]byte{filepath.Join(abs, out): src}}
	pkgs, err := packages.Load(cfg, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Errorf("generated code does not compile: %v", e)
		}
	}
}

// TestFirstGeneration generates for a package whose code already uses the
// names the output declares: their being undefined is not an error, or the
// first generation could never happen. Other errors still are.
func TestFirstGeneration(t *testing.T) {
	src, err := Generate(filepath.Join("testdata", "firstuse"), "counter_xpc.go", []string{"Counter"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("func NewCounterServer(")) {
		t.Errorf("no server in:\n%s", src)
	}
	if _, err := Generate(filepath.Join("testdata", "refused"), "x_xpc.go", []string{"Taken"}); err == nil {
		t.Error("a package whose generated name is declared already was accepted")
	}
}
