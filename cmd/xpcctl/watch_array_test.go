package main

import (
	"strings"
	"testing"

	"github.com/goxpc/xpc"
)

// An array of a few short names is shown whole, so that a watch line says
// which names a job checked in; any other by its size.
func TestWatchArray(t *testing.T) {
	for _, tc := range []struct {
		v    xpc.Array
		want string
	}{
		{xpc.Array{}, "[]"},
		{xpc.Array{xpc.String("org.x.a")}, "[org.x.a]"},
		{xpc.Array{xpc.String("org.x.a"), xpc.String("org.x.b")}, "[org.x.a,org.x.b]"},
		{xpc.Array{xpc.Int64(1)}, "[1 items]"},
		{xpc.Array{xpc.String("a b")}, "[1 items]"},
		{xpc.Array{xpc.String(strings.Repeat("n", 40)), xpc.String(strings.Repeat("m", 40))}, "[2 items]"},
		{xpc.Array{xpc.String("a\x1bb")}, "[a\x1bb]"},
	} {
		if got := watchValue(tc.v); got != tc.want {
			t.Errorf("watchValue(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
