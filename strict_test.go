package xpc

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Strict decoding (ObjectIntoStrict, Decoder.Strict): unknown keys and
// missing required keys are errors there, and nowhere else.

type strictInner struct {
	ID   int64  `xpc:"id,required"`
	Note string `xpc:"note"`
}

type StrictBase struct {
	Owner string `xpc:"owner,required"`
}

type strictOuter struct {
	StrictBase
	Name  string                 `xpc:"Name"`
	Inner strictInner            `xpc:"inner"`
	Ptr   *strictInner           `xpc:"ptr"`
	List  []strictInner          `xpc:"list"`
	Arr   [1]strictInner         `xpc:"arr"`
	Map   map[string]strictInner `xpc:"map"`
	Any   any                    `xpc:"any"`
}

// strictGood is a dictionary strictOuter takes strictly.
func strictGood() *Dictionary {
	in := func() *Dictionary { return Dict("id", Int64(1), "note", "n") }
	return Dict("owner", "o", "Name", "x", "inner", in(), "ptr", in(),
		"list", Array{in(), in()}, "arr", Array{in()}, "map", Dict("k", in()), "any", Int64(3))
}

// with returns a copy of d with key set to v, or removed if v is nil.
func with(d *Dictionary, key string, v Object) *Dictionary {
	c := Dict()
	for k, x := range d.All() {
		c.Set(k, x)
	}
	if v == nil {
		c.Delete(key)
	} else {
		c.Set(key, v)
	}
	return c
}

func TestStrictDecoding(t *testing.T) {
	good := strictGood()
	inner := func(extra string, drop bool) *Dictionary {
		d := Dict("id", Int64(1))
		if extra != "" {
			d.Set(extra, Int64(2))
		}
		if drop {
			d.Delete("id")
		}
		return d
	}
	cases := []struct {
		name string
		in   *Dictionary
		path string
		kind error
		hint string // in the error's text
	}{
		{"unknown top-level key", with(good, "extra", Int64(1)), "extra", ErrUnknownKey, ""},
		{"key differing in case", with(with(good, "Name", nil), "name", String("x")), "name", ErrUnknownKey, "did you mean Name?"},
		{"unknown key in a nested struct", with(good, "inner", inner("bogus", false)), "inner.bogus", ErrUnknownKey, ""},
		{"case in a nested struct", with(good, "inner", inner("ID", false)), "inner.ID", ErrUnknownKey, "did you mean id?"},
		{"unknown key behind a pointer", with(good, "ptr", inner("x", false)), "ptr.x", ErrUnknownKey, ""},
		{"unknown key in a slice element", with(good, "list", Array{inner("", false), inner("x", false)}), "list[1].x", ErrUnknownKey, ""},
		{"unknown key in an array element", with(good, "arr", Array{inner("x", false)}), "arr[0].x", ErrUnknownKey, ""},
		{"unknown key in a map value", with(good, "map", Dict("k", inner("x", false))), "map.k.x", ErrUnknownKey, ""},
		{"missing top-level required key (embedded)", with(good, "owner", nil), "owner", ErrRequiredKey, ""},
		{"missing required key in a nested struct", with(good, "inner", inner("", true)), "inner.id", ErrRequiredKey, ""},
		{"missing required key in a slice element", with(good, "list", Array{inner("", true)}), "list[0].id", ErrRequiredKey, ""},
		{"missing required key in a map value", with(good, "map", Dict("k", inner("", true))), "map.k.id", ErrRequiredKey, ""},
	}
	var v strictOuter
	if err := ObjectIntoStrict(good, &v); err != nil {
		t.Fatalf("a dictionary with every field: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Not strict: today's behaviour, the value decodes.
			var lax strictOuter
			if err := ObjectInto(c.in, &lax); err != nil {
				t.Fatalf("ObjectInto: %v", err)
			}
			body, err := Encode(c.in)
			if err != nil {
				t.Fatal(err)
			}
			var dec Decoder
			if err := dec.DecodeValue(body, nil, &lax); err != nil {
				t.Fatalf("DecodeValue: %v", err)
			}
			dec.Strict = true
			for _, err := range []error{ObjectIntoStrict(c.in, &strictOuter{}), dec.DecodeValue(body, nil, &strictOuter{})} {
				var fe *FieldError
				if !errors.As(err, &fe) || !errors.Is(err, c.kind) || fe.Path != c.path {
					t.Fatalf("got %v, want a *FieldError at %q caused by %v", err, c.path, c.kind)
				}
				if !strings.Contains(err.Error(), c.hint) || c.hint == "" && strings.Contains(err.Error(), "did you mean") {
					t.Errorf("%q: want the hint %q", err, c.hint)
				}
				if strings.Count(err.Error(), "xpc: ") != 1 {
					t.Errorf("%q: want one prefix", err)
				}
			}
		})
	}
}

// TestStrictOtherErrorsUnchanged: strictness adds errors, it does not
// change the others.
func TestStrictOtherErrorsUnchanged(t *testing.T) {
	var v strictOuter
	err := ObjectIntoStrict(with(strictGood(), "Name", Int64(1)), &v)
	var tm *TypeMismatchError
	if !errors.As(err, &tm) {
		t.Errorf("type mismatch: got %v", err)
	}
	// null for a struct is its zero value: no key of it is missing.
	if err := ObjectIntoStrict(with(strictGood(), "inner", Null{}), &v); err != nil {
		t.Errorf("null struct: %v", err)
	}
}

// TestStrictManyFields: required fields past the 64th are checked too.
func TestStrictManyFields(t *testing.T) {
	var fields []reflect.StructField
	for i := range 70 {
		fields = append(fields, reflect.StructField{Name: "F" + strconv.Itoa(i), Type: reflect.TypeFor[int](), Tag: `xpc:",required"`})
	}
	typ := reflect.StructOf(fields)
	full := Dict()
	for i := range 70 {
		full.Set("F"+strconv.Itoa(i), Int64(int64(i)))
	}
	if err := ObjectIntoStrict(full, reflect.New(typ).Interface()); err != nil {
		t.Fatalf("all 70 keys: %v", err)
	}
	for _, missing := range []int{0, 63, 64, 69} {
		key := "F" + strconv.Itoa(missing)
		err := ObjectIntoStrict(with(full, key, nil), reflect.New(typ).Interface())
		var fe *FieldError
		if !errors.Is(err, ErrRequiredKey) || !errors.As(err, &fe) || fe.Path != key {
			t.Errorf("without %s: got %v", key, err)
		}
	}
}

// TestRequiredIgnoredWhenNotStrict: the option changes nothing else: the
// key is the field's name, and encoding is unchanged.
func TestRequiredIgnoredWhenNotStrict(t *testing.T) {
	type T struct {
		A int `xpc:",required"`
		B int `xpc:"b,omitempty,required"`
	}
	obj, err := ValueOf(T{A: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(obj, Dict("A", Int64(1))) {
		t.Errorf("ValueOf: %v", obj)
	}
	var v T
	if err := ObjectInto(Dict(), &v); err != nil {
		t.Errorf("ObjectInto of an empty dictionary: %v", err)
	}
	if err := ObjectIntoStrict(Dict("A", Int64(1)), &v); !errors.Is(err, ErrRequiredKey) || !strings.Contains(err.Error(), "b: ") {
		t.Errorf("strict without b: %v", err)
	}
}
