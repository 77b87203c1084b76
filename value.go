package xpc

import "reflect"

// ValueOf converts a Go value to an XPC object by the conversion rules of
// Marshal: a struct or map becomes a *Dictionary (a struct's keys in field
// order, a map's sorted), a slice an Array, and so on. An Object is returned
// as it is, and nil gives Null{}. Out-of-band objects inside v (*FD,
// *SharedMemory, *Endpoint) are placed in the result as they are, the same
// pointers, still owned by whoever owns v.
func ValueOf(v any) (Object, error) {
	if o, ok := v.(Object); ok {
		return o, nil
	}
	if v == nil {
		return Null{}, nil
	}
	// Through bytes: the wire form is the one definition of what a value
	// becomes, and the out-of-band objects are replayed into the result.
	w := getScratch()
	defer putScratch(w)
	w.u32(MagicLocal)
	w.u32(Version)
	rv := reflect.ValueOf(v)
	if err := codecFor(rv.Type()).enc(w, rv, 0); err != nil {
		return nil, asFieldError(err)
	}
	r := reader{b: w.b, lim: w.lim, att: &replaySource{att: w.att}}
	return r.body()
}
