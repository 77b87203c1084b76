package editdist

import (
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"abc", "abd", 1}, {"Minutes", "Minute", 1}, {"Crashd", "Crashed", 1},
		{"abc", "xyz", 3}, {"a", "abcd", 3}, {"list", "lst", 1}, {"kickstart", "kickstrat", 2}, {"", "abc", 3},
	} {
		if d := Distance(tt.a, tt.b, 10); d != tt.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
		if d := Distance(tt.b, tt.a, 10); d != tt.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.b, tt.a, d, tt.d)
		}
	}
	// At or past the limit, and past MaxLen, it is the limit.
	if d := Distance("abcdef", "uvwxyz", 3); d != 3 {
		t.Errorf("far apart: %d, want the limit 3", d)
	}
	long := strings.Repeat("a", MaxLen+1)
	if d := Distance(long, long, 3); d != 3 {
		t.Errorf("longer than MaxLen: %d, want the limit 3", d)
	}
}
