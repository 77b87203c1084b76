package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedUpToDate regenerates every file xpcgen wrote in the
// repository (found by its first line) in memory and fails if the
// checked-in file differs: run go generate in its package.
func TestGeneratedUpToDate(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	own, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == own || (path != root && strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		types, ok := generatedTypes(t, path)
		if !ok {
			return nil
		}
		n++
		rel, _ := filepath.Rel(root, path)
		want, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got, err := Generate(filepath.Dir(path), filepath.Base(path), types)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go generate in %s", rel, filepath.Dir(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("found no generated file in the repository")
	}
	t.Logf("%d generated files up to date", n)
}

// generatedTypes returns the -type list of a file xpcgen wrote, or false
// for any other file.
func generatedTypes(t *testing.T, path string) ([]string, bool) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return nil, false
	}
	line := sc.Text()
	if !strings.HasPrefix(line, headerPrefix) || !strings.HasSuffix(line, headerSuffix) {
		return nil, false
	}
	return strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, headerPrefix), headerSuffix), ","), true
}
