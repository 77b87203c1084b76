package xpc

import (
	"errors"
	"fmt"
	"testing"
)

// Coded errors: ErrorObjectOf on one side, RemoteError.Is and As on the
// other. Each test builds the *RemoteError from the object ErrorObjectOf
// made, sent through the codec as a peer's would be.

const testDomain = "org.goxpc.test.weather"

var (
	errNoSuchCity = &DomainError{Domain: testDomain, Code: 1, Description: "no such city"}
	errRateLimit  = &DomainError{Domain: testDomain, Code: 2, Description: "rate limited"}
	errOtherNo1   = &DomainError{Domain: "org.goxpc.test.other", Code: 1, Description: "other"}
)

// quotaError is a coded error with fields and pointer receivers.
type quotaError struct {
	Limit int    `xpc:"limit"`
	Used  int    `xpc:"used"`
	User  string `xpc:"user"`
}

func (e *quotaError) Error() string       { return fmt.Sprintf("quota %d/%d", e.Used, e.Limit) }
func (e *quotaError) ErrorDomain() string { return testDomain }
func (e *quotaError) ErrorCode() int      { return 3 }

// retryError is a coded error with value receivers, whose code depends on
// its fields.
type retryError struct {
	AfterMS int  `xpc:"after_ms"`
	Fatal   bool `xpc:"fatal"`
}

func (e retryError) Error() string       { return "retry later" }
func (e retryError) ErrorDomain() string { return testDomain }
func (e retryError) ErrorCode() int {
	if e.Fatal {
		return 5
	}
	return 4
}

// otherDomainError has quotaError's code in another domain.
type otherDomainError struct{}

func (otherDomainError) Error() string       { return "other" }
func (otherDomainError) ErrorDomain() string { return "org.goxpc.test.other" }
func (otherDomainError) ErrorCode() int      { return 3 }

// crossed returns the *RemoteError a peer's ErrorObjectOf(err) becomes.
func crossed(t *testing.T, err error) *RemoteError {
	t.Helper()
	body, e := Encode(ErrorObjectOf(err))
	if e != nil {
		t.Fatal(e)
	}
	obj, e := Decode(body)
	if e != nil {
		t.Fatal(e)
	}
	return &RemoteError{Object: obj.(*ErrorObject)}
}

func TestCodedSentinel(t *testing.T) {
	re := crossed(t, fmt.Errorf("looking up Atlantis: %w", errNoSuchCity))
	if re.Domain() != testDomain || re.Code() != 1 || re.Object.Description() != "looking up Atlantis: no such city" {
		t.Errorf("domain %q code %d description %q", re.Domain(), re.Code(), re.Object.Description())
	}
	if re.Object.Get(ErrorInfoKey) != nil {
		t.Errorf("a DomainError carries no info: %v", re.Object)
	}
	var err error = fmt.Errorf("call: %w", re)
	if !errors.Is(err, errNoSuchCity) {
		t.Error("errors.Is(sentinel) is false")
	}
	for _, other := range []error{errRateLimit, errOtherNo1, &DomainError{Code: 1}, ErrReplyFailed} {
		if errors.Is(err, other) {
			t.Errorf("matches %v (%v)", other, err)
		}
	}
	var de *DomainError
	if !errors.As(err, &de) || *de != (DomainError{Domain: testDomain, Code: 1, Description: "looking up Atlantis: no such city"}) {
		t.Errorf("As *DomainError: %+v", de)
	}
	var ce CodedError
	if !errors.As(err, &ce) || ce.ErrorDomain() != testDomain || ce.ErrorCode() != 1 || !errors.Is(ce, errNoSuchCity) {
		t.Errorf("As CodedError: %v", ce)
	}
	var qe *quotaError
	if errors.As(err, &qe) {
		t.Errorf("a code-1 error restored as a code-3 type: %+v", qe)
	}
}

func TestCodedStructPointer(t *testing.T) {
	sent := &quotaError{Limit: 10, Used: 11, User: "ann"}
	re := crossed(t, fmt.Errorf("upload: %w", sent))
	var err error = fmt.Errorf("call: %w", re)
	var qe *quotaError
	if !errors.As(err, &qe) || *qe != *sent {
		t.Fatalf("As *quotaError: %+v", qe)
	}
	if !errors.Is(err, &quotaError{}) || !errors.Is(err, &DomainError{Domain: testDomain, Code: 3}) {
		t.Error("errors.Is by domain and code fails")
	}
	var od otherDomainError
	if errors.As(err, &od) || errors.Is(err, od) {
		t.Error("matches the same code in another domain")
	}
	var rv retryError
	if errors.As(err, &rv) {
		t.Error("restored as a type of the same domain and another code")
	}
}

func TestCodedStructValue(t *testing.T) {
	for _, sent := range []retryError{{AfterMS: 250}, {AfterMS: 9, Fatal: true}} {
		var err error = crossed(t, sent)
		var got retryError
		if !errors.As(err, &got) || got != sent {
			t.Errorf("As retryError: %+v, want %+v", got, sent)
		}
		var gotPtr *retryError // *retryError has the value methods too
		if !errors.As(err, &gotPtr) || *gotPtr != sent {
			t.Errorf("As *retryError: %+v, want %+v", gotPtr, sent)
		}
	}
	// The code is the value's: info that decodes to another code does not match.
	re := crossed(t, retryError{AfterMS: 1, Fatal: true})
	re.Object.Set(ErrorCodeKey, Int64(4))
	var got retryError
	if errors.As(re, &got) {
		t.Errorf("code 4 with info of code 5 restored: %+v", got)
	}
}

func TestCodedNoDomain(t *testing.T) {
	re := crossed(t, fmt.Errorf("wrapped: %w", errors.New("disk full")))
	if re.Domain() != "" || re.Code() != 0 || re.Object.Description() != "wrapped: disk full" {
		t.Errorf("domain %q code %d description %q", re.Domain(), re.Code(), re.Object.Description())
	}
	if errors.Is(re, &DomainError{}) || errors.Is(re, errNoSuchCity) {
		t.Error("an error of no domain matches a DomainError")
	}
	var de *DomainError
	if !errors.As(re, &de) || de.Domain != "" || de.Description != "wrapped: disk full" {
		t.Errorf("As *DomainError: %+v", de)
	}
	var ce CodedError
	var qe *quotaError
	if errors.As(re, &ce) || errors.As(re, &qe) {
		t.Error("an error of no domain restored as a coded type")
	}
	// A CodedError of empty domain crosses as text alone.
	if re := crossed(t, &DomainError{Code: 7, Description: "x"}); re.Object.Get(ErrorCodeKey) != nil {
		t.Errorf("empty domain sent a code: %v", re.Object)
	}
	if ErrorObjectOf(nil) != nil {
		t.Error("ErrorObjectOf(nil) is not nil")
	}
}

// TestCodedRelay: a service that returns a remote error it got passes on
// its domain and code.
func TestCodedRelay(t *testing.T) {
	re := crossed(t, fmt.Errorf("relay: %w", crossed(t, errRateLimit)))
	if !errors.Is(re, errRateLimit) {
		t.Errorf("relayed error lost its code: %v", re.Object)
	}
}

// TestCodedHostile: error objects a peer made up never panic and never
// match what they do not say.
func TestCodedHostile(t *testing.T) {
	withKeys := func(kv ...any) *RemoteError {
		eo := NewErrorObject("hostile")
		for i := 0; i < len(kv); i += 2 {
			eo.Set(kv[i].(string), kv[i+1].(Object))
		}
		return &RemoteError{Object: eo}
	}
	code3 := func(kv ...any) *RemoteError {
		return withKeys(append([]any{ErrorDomainKey, String(testDomain), ErrorCodeKey, Int64(3)}, kv...)...)
	}
	cases := []struct {
		name  string
		re    *RemoteError
		coded bool // Is matches quotaError's domain and code
		as    bool // As restores a *quotaError
	}{
		{"nil object", &RemoteError{}, false, false},
		{"domain not a string", withKeys(ErrorDomainKey, Int64(1), ErrorCodeKey, Int64(3)), false, false},
		{"code not an int64", withKeys(ErrorDomainKey, String(testDomain), ErrorCodeKey, String("3")), false, false},
		{"code as uint64", withKeys(ErrorDomainKey, String(testDomain), ErrorCodeKey, Uint64(3)), false, false},
		{"key types swapped", withKeys(ErrorDomainKey, Int64(3), ErrorCodeKey, String(testDomain)), false, false},
		{"info not a dictionary", code3(ErrorInfoKey, String("limit=3")), true, true},
		{"info of wrong types", code3(ErrorInfoKey, Dict("limit", String("ten"))), true, false},
		{"info out of range", code3(ErrorInfoKey, Dict("limit", Uint64(1<<63))), true, false},
		{"info nested too deep", code3(ErrorInfoKey, deepDict(200)), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			re := c.re
			_ = re.Error()
			var qe *quotaError
			if got := errors.As(re, &qe); got != c.as {
				t.Errorf("As *quotaError = %v (%+v), want %v", got, qe, c.as)
			}
			if got := errors.Is(re, &quotaError{}); got != c.coded {
				t.Errorf("Is quotaError = %v, want %v", got, c.coded)
			}
			var rv retryError
			var de *DomainError
			var ce CodedError
			for _, target := range []any{&rv, &de, &ce, nil, qe, 3, new(int)} {
				_ = re.As(target) // must not panic
			}
			if rv != (retryError{}) {
				t.Errorf("restored a retryError: %+v", rv)
			}
		})
	}
	// Unknown info keys are skipped (a newer peer's fields): it matches.
	re := withKeys(ErrorDomainKey, String(testDomain), ErrorCodeKey, Int64(3),
		ErrorInfoKey, Dict("limit", Int64(3), "new_field", String("x")))
	var qe *quotaError
	if !errors.As(re, &qe) || qe.Limit != 3 {
		t.Errorf("info with a newer field: %+v", qe)
	}
}

// deepDict returns a dictionary nested n deep.
func deepDict(n int) *Dictionary {
	d := Dict("limit", Int64(1))
	for range n {
		d = Dict("limit", d)
	}
	return d
}
