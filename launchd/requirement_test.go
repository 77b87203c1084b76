package launchd

import (
	"errors"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
)

// machEntry is a MachServices entry for com.example.x with the options
// given as plist dictionary entries.
func machEntry(options string) string {
	return labelEntry + programEntry + `<key>MachServices</key><dict><key>com.example.x</key><dict>` + options + `</dict></dict>`
}

// MachServices → NAME → Requirement is parsed at load with
// xpc.ParseRequirement, kept by the canonical form, and counts in the
// fingerprint.
func TestMachServiceRequirement(t *testing.T) {
	j, err := Parse(testFile, []byte(doc(machEntry(`<key>Requirement</key><string>uid 0</string>`))))
	if err != nil {
		t.Fatal(err)
	}
	ms := j.MachServices["com.example.x"]
	if ms.Requirement.String() != "uid 0" || ms.IsZero() {
		t.Fatalf("Requirement %q (entry %+v)", ms.Requirement, ms)
	}
	d := j.ToDictionary()
	entry, _ := d.Get("MachServices").(*xpc.Dictionary).Get("com.example.x").(*xpc.Dictionary)
	if entry == nil || entry.Get("Requirement") != xpc.String("uid 0") {
		t.Fatalf("canonical form: %s", xpc.Format(d))
	}
	for _, format := range []xpc.PlistFormat{xpc.PlistXML, xpc.PlistBinary} {
		data, err := xpc.ToPlist(d, format)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(testFile, data)
		if err != nil || !back.Equal(j) || back.MachServices["com.example.x"].Requirement.String() != "uid 0" {
			t.Errorf("%v: round trip: %v %+v", format, err, back)
		}
	}
	plain, err := Parse(testFile, []byte(doc(machEntry(``))))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Fingerprint() == j.Fingerprint() || plain.Equal(j) {
		t.Error("a requirement does not change the fingerprint")
	}
	other, _ := Parse(testFile, []byte(doc(machEntry(`<key>Requirement</key><string>uid 1</string>`))))
	if other == nil || other.Fingerprint() == j.Fingerprint() {
		t.Error("another requirement, the same fingerprint")
	}
}

// A requirement that does not parse is a load error naming the key and
// the column; one of the wrong type is ErrBadType.
func TestMachServiceRequirementErrors(t *testing.T) {
	key := "MachServices.com.example.x.Requirement"
	_, err := Parse(testFile, []byte(doc(machEntry(`<key>Requirement</key><string>uid 0 exe /x</string>`))))
	checkErr(t, err, ErrValueNotAllowed, key, "bad requirement: column 7: ")
	if e := Errors(err)[0]; strings.Count(e.Reason, "bad requirement") != 1 {
		t.Errorf("reason %q", e.Reason)
	}
	if !errors.Is(err, xpc.ErrBadRequirement) {
		t.Errorf("%v: not ErrBadRequirement", err)
	}
	var se *xpc.RequirementSyntaxError
	if !errors.As(err, &se) || se.Column != 7 {
		t.Errorf("%v: column %+v", err, se)
	}
	_, err = Parse(testFile, []byte(doc(machEntry(`<key>Requirement</key><integer>0</integer>`))))
	checkErr(t, err, ErrBadType, key, "want string")
}
