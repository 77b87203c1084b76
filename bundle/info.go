package bundle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strings"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/launchd"
)

// maxIdleExit bounds IdleExitTimeout, in seconds, as launchd bounds its
// intervals.
const maxIdleExit = math.MaxInt32

// info is what Read takes from an Info.plist.
type info struct {
	identifier string
	executable string // relative, checked by launchd.RelativePathProblem
	version    string
	svc        serviceKeys
}

// serviceKeys is the XPCService dictionary of a service's Info.plist.
type serviceKeys struct {
	typ         ServiceType
	env         map[string]string
	joinSession bool
	idleExit    time.Duration
}

// readInfo reads and checks the Info.plist rel of d; service says whether
// it is a service's, whose XPCService dictionary is read too.
func readInfo(r *reader, d *dir, rel string, service bool) (info, error) {
	p := d.join(rel)
	data, err := r.read(d, rel, MaxInfoPlistSize)
	if err != nil {
		if isNotExist(err) {
			// Read found the application's; a service must have one.
			return info{}, &Error{Path: p, Err: fmt.Errorf("%w: Info.plist missing", ErrBadBundle)}
		}
		return info{}, err
	}
	in, err := parseInfo(data, service)
	if err != nil {
		return info{}, &Error{Path: p, Err: err}
	}
	return in, nil
}

// parseInfo parses an Info.plist. Its errors wrap ErrBadBundle.
func parseInfo(data []byte, service bool) (info, error) {
	obj, _, err := xpc.FromPlist(data)
	if err != nil {
		return info{}, fmt.Errorf("%w: not a property list: %w", ErrBadBundle, err)
	}
	root, ok := obj.(*xpc.Dictionary)
	if !ok {
		return info{}, fmt.Errorf("%w: the root is not a dictionary", ErrBadBundle)
	}
	var in info
	if in.identifier, err = requiredString(root, "CFBundleIdentifier"); err != nil {
		return info{}, err
	}
	if err := CheckIdentifier(in.identifier); err != nil {
		return info{}, fmt.Errorf("CFBundleIdentifier: %w", err)
	}
	if in.executable, err = requiredString(root, "CFBundleExecutable"); err != nil {
		return info{}, err
	}
	if r := launchd.RelativePathProblem(in.executable); r != "" {
		return info{}, fmt.Errorf("%w: CFBundleExecutable: %s", ErrBadBundle, r)
	}
	if v := root.Get("CFBundleVersion"); v != nil {
		s, ok := v.(xpc.String)
		switch {
		case !ok:
			return info{}, wrongType("CFBundleVersion", "string", v)
		case len(s) > maxVersionLen:
			return info{}, fmt.Errorf("%w: CFBundleVersion: longer than %d bytes", ErrBadBundle, maxVersionLen)
		case strings.IndexByte(string(s), 0) >= 0:
			return info{}, fmt.Errorf("%w: CFBundleVersion: must not contain NUL", ErrBadBundle)
		}
		in.version = string(s)
	}
	if service {
		if in.svc, err = parseServiceKeys(root.Get("XPCService")); err != nil {
			return info{}, err
		}
	}
	return in, nil
}

func parseServiceKeys(v xpc.Object) (serviceKeys, error) {
	var sk serviceKeys
	if v == nil {
		return sk, nil
	}
	d, ok := v.(*xpc.Dictionary)
	if !ok {
		return sk, wrongType("XPCService", "dictionary", v)
	}
	if t := d.Get("ServiceType"); t != nil {
		s, ok := t.(xpc.String)
		if !ok {
			return sk, wrongType("XPCService.ServiceType", "string", t)
		}
		var err error
		if sk.typ, err = ParseServiceType(string(s)); err != nil {
			return sk, err
		}
	}
	if e := d.Get("EnvironmentVariables"); e != nil {
		env, err := environment(e)
		if err != nil {
			return sk, err
		}
		sk.env = env
	}
	if j := d.Get("JoinExistingSession"); j != nil {
		b, ok := j.(xpc.Bool)
		if !ok {
			return sk, wrongType("XPCService.JoinExistingSession", "bool", j)
		}
		sk.joinSession = bool(b)
	}
	if t := d.Get("IdleExitTimeout"); t != nil {
		var n int64
		switch x := t.(type) {
		case xpc.Int64:
			n = int64(x)
		case xpc.Uint64:
			n = maxIdleExit + 1
			if x <= maxIdleExit {
				n = int64(x)
			}
		default:
			return sk, wrongType("XPCService.IdleExitTimeout", "integer", t)
		}
		if n < 0 || n > maxIdleExit {
			return sk, fmt.Errorf("%w: XPCService.IdleExitTimeout: want 0 to %d seconds, have %d", ErrBadBundle, maxIdleExit, n)
		}
		sk.idleExit = time.Duration(n) * time.Second
	}
	return sk, nil
}

func environment(v xpc.Object) (map[string]string, error) {
	const key = "XPCService.EnvironmentVariables"
	d, ok := v.(*xpc.Dictionary)
	if !ok {
		return nil, wrongType(key, "dictionary", v)
	}
	if d.Len() == 0 {
		return nil, nil
	}
	env := make(map[string]string, d.Len())
	for _, k := range d.Keys() {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("%w: %s: variable name %q: must be non-empty, without '=' or NUL", ErrBadBundle, key, k)
		}
		s, ok := d.Get(k).(xpc.String)
		if !ok {
			return nil, wrongType(key+"."+k, "string", d.Get(k))
		}
		if strings.IndexByte(string(s), 0) >= 0 {
			return nil, fmt.Errorf("%w: %s.%s: must not contain NUL", ErrBadBundle, key, k)
		}
		env[k] = string(s)
	}
	return env, nil
}

// CheckIdentifier reports whether id is a valid CFBundleIdentifier: a
// valid service name (launchd.CheckServiceName: 1 to 127 bytes of ASCII
// letters, digits, '.', '_' and '-') in reverse-DNS form, that is, whose
// dot-separated parts are not empty (no leading, trailing or doubled
// '.'). Such an identifier is safe as a file name. The error wraps
// ErrBadBundle.
func CheckIdentifier(id string) error {
	if err := launchd.CheckServiceName(id); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBundle, err)
	}
	if strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") || strings.Contains(id, "..") {
		return fmt.Errorf("%w: %q: an empty part between dots (want reverse-DNS, such as org.example.app)", ErrBadBundle, id)
	}
	return nil
}

func requiredString(d *xpc.Dictionary, key string) (string, error) {
	v := d.Get(key)
	if v == nil {
		return "", fmt.Errorf("%w: %s missing", ErrBadBundle, key)
	}
	s, ok := v.(xpc.String)
	if !ok {
		return "", wrongType(key, "string", v)
	}
	return string(s), nil
}

func wrongType(key, want string, v xpc.Object) error {
	return fmt.Errorf("%w: %s: want %s, have %s", ErrBadBundle, key, want, v.Type())
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
