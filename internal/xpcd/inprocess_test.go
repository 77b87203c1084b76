package xpcd

import (
	"context"
	"os"
	"testing"
)

// A label runs in process by one function only: a second Add is refused
// and leaves the first in place.
func TestInProcessAddOnce(t *testing.T) {
	p := NewInProcess()
	first := func(context.Context, *os.File, string) error { return nil }
	if !p.Add("org.example.a", first) {
		t.Fatal("the first Add was refused")
	}
	if p.Add("org.example.a", func(context.Context, *os.File, string) error { return nil }) {
		t.Fatal("a second Add for the same label was accepted")
	}
	if !p.Add("org.example.b", first) {
		t.Fatal("Add of another label was refused")
	}
}
