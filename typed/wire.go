package typed

import "strconv"

// The keys of the wire form (docs/TYPED.md, "Wire form").
const (
	// MethodKey holds the method's name (a string) in a request.
	MethodKey = "method"
	// ArgKeyPrefix, followed by the argument's position (0 for the first
	// after the context), is the key of an argument in a request.
	ArgKeyPrefix = "arg"
	// ResultKeyPrefix, followed by the result's position (0 for the
	// first), is the key of a result in a reply.
	ResultKeyPrefix = "result"
)

// The keys of the first positions, back to back, so that a call does not
// build them: a key is a slice of a constant.
const (
	argKeys    = "arg0arg1arg2arg3arg4arg5arg6arg7arg8arg9"
	resultKeys = "result0result1result2result3result4result5result6result7result8result9"
)

// ArgKey returns the key of the argument at position i.
func ArgKey(i int) string {
	if n := len(ArgKeyPrefix) + 1; i >= 0 && i < len(argKeys)/n {
		return argKeys[i*n : i*n+n]
	}
	return ArgKeyPrefix + strconv.Itoa(i)
}

// ResultKey returns the key of the result at position i.
func ResultKey(i int) string {
	if n := len(ResultKeyPrefix) + 1; i >= 0 && i < len(resultKeys)/n {
		return resultKeys[i*n : i*n+n]
	}
	return ResultKeyPrefix + strconv.Itoa(i)
}
