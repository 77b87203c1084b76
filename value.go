package xpc

// ValueOf converts a Go value to an XPC object (placeholder until the
// reflection codec lands).
func ValueOf(v any) (Object, error) {
	if o, ok := v.(Object); ok {
		return o, nil
	}
	panic("not yet")
}
