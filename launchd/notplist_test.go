package launchd

import (
	"errors"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
)

// A file that is no property list (empty, JSON, junk, bare OpenStep text)
// is refused as "not a property list", never read as a string.
func TestParseNotPlist(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "not a property list: empty input"},
		{"blank", " \n\t", "not a property list: empty input"},
		{"JSON object", `{"Label": "x", "Program": "/bin/true"}`, "not a property list: JSON"},
		{"JSON array", `["a", 1]`, "not a property list: JSON"},
		{"junk", "\x00\x01\x02junk\xff", "not a property list: error parsing text property list"},
		{"word", "hello", "not a property list: text that is not a dictionary"},
		{"quoted", `"Label"`, "not a property list: text that is not a dictionary"},
		{"bad binary", "bplist00junk", "not a property list: binary plist"},
		{"bad XML", "<plist><dict><key>a</key></plist>", "not a property list: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.plist", []byte(tc.in))
			es := Errors(err)
			if len(es) != 1 || !errors.Is(err, ErrNotJob) || es[0].Key != "" ||
				!strings.HasPrefix(es[0].Reason, tc.want) || !strings.HasPrefix(err.Error(), "f.plist: ") {
				t.Fatalf("got %v", err)
			}
			if tc.name != "word" && tc.name != "quoted" && !errors.Is(err, xpc.ErrBadPlist) {
				t.Errorf("%v does not wrap xpc.ErrBadPlist", err)
			}
		})
	}
	// An OpenStep dictionary is still a job definition.
	if _, err := Parse("f.plist", []byte("{Label = x; Program = /bin/true;}")); err != nil {
		t.Errorf("OpenStep job: %v", err)
	}
}
