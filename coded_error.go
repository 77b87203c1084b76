package xpc

import (
	"errors"
	"reflect"
)

// Errors that cross a connection as themselves, with a domain and a code,
// as NSError's do between macOS processes.

// CodedError is an error that crosses a connection with its domain (a
// reverse-DNS name, saying who defines the error) and a code within that
// domain. ErrorObjectOf puts both in the error object a reply carries; on
// the other side errors.Is matches the *RemoteError against any CodedError
// with the same domain and code, and errors.As restores a CodedError type of
// that domain (RemoteError.As).
//
// ErrorDomain must not depend on the value: errors.As calls it on a zero
// value of the target's type.
type CodedError interface {
	error
	ErrorDomain() string
	ErrorCode() int
}

// DomainError is the plain CodedError: a domain, a code and a description.
// It makes sentinel errors that keep their identity across a connection:
//
//	var ErrNoSuchCity = &xpc.DomainError{Domain: "org.example.weather", Code: 1, Description: "no such city"}
//
// errors.As into a *DomainError restores any remote coded error.
type DomainError struct {
	Domain      string
	Code        int
	Description string
}

// Error returns the description.
func (e *DomainError) Error() string { return e.Description }

// ErrorDomain returns Domain.
func (e *DomainError) ErrorDomain() string { return e.Domain }

// ErrorCode returns Code.
func (e *DomainError) ErrorCode() int { return e.Code }

// Is reports whether target is a CodedError with the same domain and code.
func (e *DomainError) Is(target error) bool {
	c, ok := target.(CodedError)
	return ok && e.Domain != "" && c.ErrorDomain() == e.Domain && c.ErrorCode() == e.Code
}

// The keys of a coded error in an error object.
const (
	ErrorDomainKey = "error-domain"
	ErrorCodeKey   = "error-code"
	ErrorInfoKey   = "error-info"
)

// ErrorObjectOf returns the error object that carries err across a
// connection (Message.ReplyError): its description is err's text, and if
// err is or wraps a CodedError (errors.As), the first one's domain and code,
// and, when that error is a struct or a pointer to one, its exported fields
// (ValueOf) as info, which errors.As on the other side decodes back. An
// error of no domain crosses as its text alone: the other side gets a
// *RemoteError, which errors.As into a *DomainError reads with an empty
// domain.
func ErrorObjectOf(err error) *ErrorObject {
	if err == nil {
		return nil
	}
	eo := NewErrorObject(err.Error())
	var c CodedError
	if !errors.As(err, &c) || c.ErrorDomain() == "" {
		return eo
	}
	eo.Set(ErrorDomainKey, String(c.ErrorDomain()))
	eo.Set(ErrorCodeKey, Int64(c.ErrorCode()))
	if _, plain := c.(*DomainError); plain {
		return eo
	}
	rv := reflect.ValueOf(c)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Struct {
		if info, err := ValueOf(c); err == nil {
			if d, ok := info.(*Dictionary); ok && d.Len() > 0 {
				eo.Set(ErrorInfoKey, d)
			}
		}
	}
	return eo
}

// Domain returns the error's domain, or "" if the peer sent none.
func (e *RemoteError) Domain() string {
	if e.Object == nil {
		return ""
	}
	s, _ := e.Object.Get(ErrorDomainKey).(String)
	return string(s)
}

// Code returns the error's code within its domain, or 0.
func (e *RemoteError) Code() int {
	if e.Object == nil {
		return 0
	}
	n, _ := e.Object.Get(ErrorCodeKey).(Int64)
	return int(n)
}

// As restores the peer's error: target must point to a CodedError type
// (a *T or a T) whose ErrorDomain is the error's domain; the error's info is
// decoded into a new value of the type (ObjectInto, so keys the type does
// not know are skipped), and it matches if its ErrorCode is then the
// error's code. Info that does not decode into the type does not match. A
// target of type **DomainError takes any remote error, coded or not; a
// target pointing to an interface that *DomainError implements (such as
// CodedError) takes a coded remote error as a *DomainError.
func (e *RemoteError) As(target any) bool {
	tv := reflect.ValueOf(target)
	if tv.Kind() != reflect.Pointer || tv.IsNil() || e.Object == nil {
		return false
	}
	t := tv.Type().Elem()
	domainErr := reflect.TypeFor[*DomainError]()
	if t == domainErr || t.Kind() == reflect.Interface && e.Domain() != "" && domainErr.Implements(t) {
		tv.Elem().Set(reflect.ValueOf(&DomainError{Domain: e.Domain(), Code: e.Code(), Description: e.Object.Description()}))
		return true
	}
	if t.Kind() == reflect.Interface || !t.Implements(reflect.TypeFor[CodedError]()) || e.Domain() == "" {
		return false
	}
	v := newValue(t)
	if v.Interface().(CodedError).ErrorDomain() != e.Domain() {
		return false
	}
	if info, ok := e.Object.Get(ErrorInfoKey).(*Dictionary); ok {
		p := v
		if t.Kind() != reflect.Pointer {
			p = reflect.New(t)
			p.Elem().Set(v)
		}
		if ObjectInto(info, p.Interface()) != nil {
			return false
		}
		if t.Kind() != reflect.Pointer {
			v = p.Elem()
		}
	}
	if v.Interface().(CodedError).ErrorCode() != e.Code() {
		return false
	}
	tv.Elem().Set(v)
	return true
}

// newValue returns a zero value of t, with a pointer type's element
// allocated, so that methods can be called on it.
func newValue(t reflect.Type) reflect.Value {
	if t.Kind() == reflect.Pointer {
		return reflect.New(t.Elem())
	}
	return reflect.New(t).Elem()
}
