package xpc

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseRequirement: parsing never panics; what parses has a String
// that parses to the same requirement, and what does not is a
// *RequirementSyntaxError with a column inside the text or just after it.
func FuzzParseRequirement(f *testing.F) {
	for _, tc := range requirementCanon {
		f.Add(tc.in)
	}
	for _, tc := range requirementFaults {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequirement(s)
		if err != nil {
			var se *RequirementSyntaxError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(s)+1 {
				t.Fatalf("ParseRequirement(%q): %v", s, err)
			}
			return
		}
		again, err := ParseRequirement(r.String())
		if err != nil {
			t.Fatalf("ParseRequirement(%q) = %q, which does not parse: %v", s, r.String(), err)
		}
		if again.String() != r.String() || !reflect.DeepEqual(again.root, r.root) {
			t.Fatalf("ParseRequirement(%q) = %q, which parses to %q", s, r.String(), again.String())
		}
	})
}
