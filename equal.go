package xpc

import "math"

// Equal reports whether a and b are deeply equal XPC objects. Dictionaries
// are equal when they hold the same keys with equal values, in any order (key
// order carries no meaning in XPC). Doubles compare by bit pattern, so a NaN
// equals the same NaN and 0.0 differs from -0.0. Out-of-band objects are
// equal only to themselves.
func Equal(a, b Object) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case Double:
		y, ok := b.(Double)
		return ok && math.Float64bits(float64(x)) == math.Float64bits(float64(y))
	case Data:
		y, ok := b.(Data)
		return ok && string(x) == string(y)
	case Array:
		y, ok := b.(Array)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case *Dictionary:
		y, ok := b.(*Dictionary)
		return ok && dictEqual(x, y)
	case *ErrorObject:
		y, ok := b.(*ErrorObject)
		return ok && dictEqual(&x.Dictionary, &y.Dictionary)
	case Null, Bool, Int64, Uint64, Date, String, UUID:
		return a == b
	case Attachment:
		y, ok := b.(Attachment)
		return ok && x == y
	}
	return false
}

func dictEqual(x, y *Dictionary) bool {
	if x == y {
		return true
	}
	if x == nil || y == nil || x.Len() != y.Len() {
		return false
	}
	for _, e := range x.ents {
		if !Equal(e.val, y.Get(e.key)) {
			return false
		}
	}
	return true
}
