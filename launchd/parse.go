package launchd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goxpc/xpc/internal/fskind"

	"github.com/goxpc/xpc"
)

// MaxFileSize is the largest job definition Load and Parse accept, in bytes.
// Real launchd.plist files are a few KiB.
const MaxFileSize = 1 << 20

// Limits on names, in bytes.
const (
	// MaxLabelLen: a label names files in xpcd's state directory, so it
	// must fit a file name (NAME_MAX).
	MaxLabelLen = 255
	// MaxServiceNameLen: Apple's BOOTSTRAP_MAX_NAME_LEN (128) less the
	// NUL, so that a name valid here is valid on macOS.
	MaxServiceNameLen = 127
	// maxSeconds bounds every interval: launchd keeps them in 32 bits.
	maxSeconds = math.MaxInt32
)

// Load reads and parses the job definition in the file at path, as Parse
// does. It refuses a file that is not a regular file (after following
// symbolic links), such as a FIFO or a device, and one larger than
// MaxFileSize, with ErrBadFile. Errors from the file system are wrapped in
// an *Error as they are, so errors.Is(err, fs.ErrNotExist) works.
func Load(path string) (*Job, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer. It has no
	// effect on reading a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fileError(path, err)
	}
	defer f.Close()
	return LoadFile(f, path)
}

// LoadFile reads and parses the job definition in f, a file opened by the
// caller (as xpcd reads a plist a client opened with its own rights), by
// the same rules as Load; path names the file in errors and becomes
// Job.Path. It reads f from its current offset and does not close it.
func LoadFile(f *os.File, path string) (*Job, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fileError(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: path, Reason: "not a regular file (" + fskind.Of(fi.Mode()) + ")", Err: ErrBadFile}
	}
	if fi.Size() > MaxFileSize {
		return nil, tooLarge(path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fileError(path, err)
	}
	return Parse(path, data)
}

func fileError(path string, err error) error {
	reason := err.Error()
	if pe, ok := err.(*fs.PathError); ok {
		reason = pe.Op + ": " + pe.Err.Error()
	}
	return &Error{File: path, Reason: reason, Err: err}
}

func tooLarge(path string) error {
	return &Error{File: path, Reason: fmt.Sprintf("larger than %d bytes", MaxFileSize), Err: ErrBadFile}
}

// Parse parses and validates a job definition: a property list (XML or
// binary, as launchd reads; OpenStep and GNUstep text also parse, but
// OpenStep has no booleans or numbers) whose root is a dictionary. path
// names the file in errors and becomes Job.Path; it is not read.
//
// Every problem is reported, not only the first: the error is one *Error,
// or errors.Join of several (Errors lists them), in the order of the keys.
// On any error the Job is nil: nothing loads half-validated. Keys that have
// no effect are not errors; they are listed in Job.Warnings.
func Parse(path string, data []byte) (*Job, error) {
	if len(data) > MaxFileSize {
		return nil, tooLarge(path)
	}
	obj, format, err := xpc.FromPlist(data)
	if err != nil {
		return nil, notPlist(path, data, err)
	}
	root, ok := obj.(*xpc.Dictionary)
	if !ok {
		if format == xpc.PlistOpenStep || format == xpc.PlistGNUStep {
			// Almost any text parses as an OpenStep string: a file of
			// junk is no job, whatever the parser says.
			return nil, &Error{File: path, Reason: notPlistReason + ": text that is not a dictionary", Err: ErrNotJob}
		}
		return nil, &Error{File: path, Reason: "the root is " + withArticle(typeName(obj)) + ", not a dictionary", Err: ErrNotJob}
	}
	return FromDictionary(path, root)
}

// FromDictionary validates a job definition that is already a dictionary,
// such as one received in an XPC message, by the same rules as Parse, and
// with the same errors. file is used as Parse uses path. Besides the
// property-list types, an integer may be a Uint64 that fits an int64.
func FromDictionary(file string, dict *xpc.Dictionary) (*Job, error) {
	if dict == nil {
		return nil, &Error{File: file, Reason: "no dictionary", Err: ErrNotJob}
	}
	d := &decoder{file: file}
	j := d.job(dict)
	switch len(d.errs) {
	case 0:
		j.Path = file
		j.Warnings = d.warns
		return j, nil
	case 1:
		return nil, d.errs[0]
	}
	return nil, errors.Join(d.errs...)
}

// decoder collects the errors and warnings of one job definition.
type decoder struct {
	file  string
	errs  []error
	warns []Warning
}

func (d *decoder) fail(key keyPath, kind error, reason string) {
	d.errs = append(d.errs, &Error{File: d.file, Key: string(key), Reason: reason, Err: kind})
}

func (d *decoder) warn(key keyPath, reason string) {
	d.warns = append(d.warns, Warning{Key: string(key), Reason: reason})
}

// field is the reader of one known key.
type field func(key keyPath, v xpc.Object)

// fields reads dict's entries, in key order, with the readers in known.
// Other keys get a warning: the reason in unsupported, or "unknown".
func (d *decoder) fields(base keyPath, dict *xpc.Dictionary, known map[string]field, unsupported map[string]string) {
	var candidates []string
	for _, k := range sortedKeys(dict) {
		key := base.dot(k)
		if f, ok := known[k]; ok {
			f(key, dict.Get(k))
			continue
		}
		if r, ok := unsupported[k]; ok {
			d.warn(key, r)
			continue
		}
		if candidates == nil {
			for n := range known {
				candidates = append(candidates, n)
			}
			for n := range unsupported {
				candidates = append(candidates, n)
			}
			slices.Sort(candidates)
		}
		d.warn(key, unknownReason(k, candidates))
	}
}

func sortedKeys(dict *xpc.Dictionary) []string {
	keys := dict.Keys()
	slices.Sort(keys)
	return keys
}

// job reads the top-level dictionary.
func (d *decoder) job(root *xpc.Dictionary) *Job {
	j := &Job{
		ThrottleInterval: DefaultThrottleInterval,
		ExitTimeOut:      DefaultExitTimeOut,
		ProcessType:      DefaultProcessType,
	}
	if root.Get("Label") == nil {
		d.fail("Label", ErrMissingKey, missingReason(root, "Label"))
	}
	// BundleProgram stands in for Program: package bundle resolves it to
	// an absolute Program inside the application bundle.
	hasProgram := root.Get("Program") != nil || root.Get("BundleProgram") != nil
	if !hasProgram && root.Get("ProgramArguments") == nil {
		d.fail("Program", ErrMissingKey, "required key missing: a job needs Program, ProgramArguments or BundleProgram"+caseHint(root, "Program", "ProgramArguments", "BundleProgram"))
	}
	boolean := func(dst *bool) field {
		return func(k keyPath, v xpc.Object) { *dst, _ = d.boolean(k, v) }
	}
	absPath := func(dst *string) field {
		return func(k keyPath, v xpc.Object) { *dst, _ = d.absPath(k, v) }
	}
	seconds := func(dst *time.Duration) field {
		return func(k keyPath, v xpc.Object) {
			if s, ok := d.seconds(k, v); ok {
				*dst = s
			}
		}
	}
	d.fields("", root, map[string]field{
		"Label": func(k keyPath, v xpc.Object) {
			if s, ok := d.str(k, v); ok {
				if r := labelProblem(s); r != "" {
					d.fail(k, ErrValueNotAllowed, r)
				}
				j.Label = s
			}
		},
		"Program":          absPath(&j.Program),
		"BundleProgram":    func(k keyPath, v xpc.Object) { j.BundleProgram = d.bundlePath(k, v) },
		"ProgramArguments": func(k keyPath, v xpc.Object) { j.ProgramArguments = d.programArguments(k, v, hasProgram) },
		"Disabled":         boolean(&j.Disabled),
		"UserName":         func(k keyPath, v xpc.Object) { j.UserName = d.account(k, v, "user") },
		"GroupName":        func(k keyPath, v xpc.Object) { j.GroupName = d.account(k, v, "group") },
		"EnvironmentVariables": func(k keyPath, v xpc.Object) {
			j.EnvironmentVariables = d.environment(k, v)
		},
		"WorkingDirectory":    absPath(&j.WorkingDirectory),
		"StandardInPath":      absPath(&j.StandardInPath),
		"StandardOutPath":     absPath(&j.StandardOutPath),
		"StandardErrorPath":   absPath(&j.StandardErrorPath),
		"Umask":               func(k keyPath, v xpc.Object) { j.Umask = d.umask(k, v) },
		"Nice":                func(k keyPath, v xpc.Object) { n, _ := d.intRange(k, v, -20, 20); j.Nice = int(n) },
		"ProcessType":         func(k keyPath, v xpc.Object) { j.ProcessType = d.processType(k, v) },
		"AbandonProcessGroup": boolean(&j.AbandonProcessGroup),
		"MachServices":        func(k keyPath, v xpc.Object) { j.MachServices = d.machServices(k, v) },
		"RunAtLoad":           boolean(&j.RunAtLoad),
		"KeepAlive":           func(k keyPath, v xpc.Object) { j.KeepAlive = d.keepAlive(k, v) },
		"StartInterval": func(k keyPath, v xpc.Object) {
			if s, ok := d.seconds(k, v); ok {
				if s == 0 {
					d.warn(k, "0 means no interval: ignored")
				}
				j.StartInterval = s
			}
		},
		"StartCalendarInterval": func(k keyPath, v xpc.Object) { j.StartCalendarInterval = d.calendarIntervals(k, v) },
		"WatchPaths":            func(k keyPath, v xpc.Object) { j.WatchPaths = d.pathList(k, v) },
		"QueueDirectories":      func(k keyPath, v xpc.Object) { j.QueueDirectories = d.pathList(k, v) },
		"ThrottleInterval":      seconds(&j.ThrottleInterval),
		"ExitTimeOut": func(k keyPath, v xpc.Object) {
			if s, ok := d.seconds(k, v); ok {
				if s == 0 {
					d.warn(k, "0 means never send SIGKILL: a job that ignores SIGTERM is never stopped")
				}
				j.ExitTimeOut = s
			}
		},
		"EnableTransactions":  boolean(&j.EnableTransactions),
		"EnablePressuredExit": boolean(&j.EnablePressuredExit),
		"XPCIdleExitTimeout":  seconds(&j.IdleExitTimeout),
		"LaunchEvents":        func(k keyPath, v xpc.Object) { d.launchEvents(k, v, j) },
		NotificationsKey:      func(k keyPath, v xpc.Object) { j.Notifications = d.notifications(k, v) },
	}, unsupportedKeys)
	return j
}

// missingReason explains a missing required key, pointing at a key that
// differs only in case.
func missingReason(dict *xpc.Dictionary, key string) string {
	return "required key missing" + caseHint(dict, key)
}

func caseHint(dict *xpc.Dictionary, keys ...string) string {
	for _, k := range sortedKeys(dict) {
		for _, want := range keys {
			if strings.EqualFold(k, want) {
				return fmt.Sprintf(" (found %q: keys are case-sensitive)", k)
			}
		}
	}
	return ""
}

// typeName names an object's type as property lists do.
func typeName(o xpc.Object) string {
	switch o.(type) {
	case nil:
		return "nothing"
	case xpc.Bool:
		return "bool"
	case xpc.Int64, xpc.Uint64:
		return "integer"
	case xpc.Double:
		return "real"
	case xpc.String:
		return "string"
	case xpc.Data:
		return "data"
	case xpc.Date:
		return "date"
	case xpc.Array:
		return "array"
	case *xpc.Dictionary:
		return "dictionary"
	}
	return o.Type().String()
}

func withArticle(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

func (d *decoder) wrongType(key keyPath, want string, v xpc.Object) {
	d.fail(key, ErrBadType, "want "+want+", have "+typeName(v))
}

func (d *decoder) boolean(key keyPath, v xpc.Object) (bool, bool) {
	b, ok := v.(xpc.Bool)
	if !ok {
		d.wrongType(key, "bool", v)
		return false, false
	}
	return bool(b), true
}

// str reads a string. Strings from a property list never hold NUL, but
// those of a dictionary built in code can.
func (d *decoder) str(key keyPath, v xpc.Object) (string, bool) {
	s, ok := v.(xpc.String)
	if !ok {
		d.wrongType(key, "string", v)
		return "", false
	}
	if strings.IndexByte(string(s), 0) >= 0 {
		d.fail(key, ErrValueNotAllowed, "must not contain NUL")
		return "", false
	}
	return string(s), true
}

// integer reads an integer: an Int64, or a Uint64 that fits one.
func (d *decoder) integer(key keyPath, v xpc.Object) (int64, bool) {
	switch n := v.(type) {
	case xpc.Int64:
		return int64(n), true
	case xpc.Uint64:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
		d.fail(key, ErrValueNotAllowed, "out of range: "+strconv.FormatUint(uint64(n), 10))
		return 0, false
	}
	d.wrongType(key, "integer", v)
	return 0, false
}

func (d *decoder) intRange(key keyPath, v xpc.Object, lo, hi int64) (int64, bool) {
	n, ok := d.integer(key, v)
	if !ok {
		return 0, false
	}
	if n < lo || n > hi {
		d.fail(key, ErrValueNotAllowed, fmt.Sprintf("out of range: want %d to %d, have %d", lo, hi, n))
		return 0, false
	}
	return n, true
}

// seconds reads a whole number of seconds, 0 or more.
func (d *decoder) seconds(key keyPath, v xpc.Object) (time.Duration, bool) {
	n, ok := d.integer(key, v)
	if !ok {
		return 0, false
	}
	switch {
	case n < 0:
		d.fail(key, ErrValueNotAllowed, fmt.Sprintf("must not be negative, have %d", n))
		return 0, false
	case n > maxSeconds:
		d.fail(key, ErrValueNotAllowed, fmt.Sprintf("out of range: at most %d seconds, have %d", maxSeconds, n))
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func (d *decoder) absPath(key keyPath, v xpc.Object) (string, bool) {
	s, ok := d.str(key, v)
	if !ok {
		return "", false
	}
	if r := pathProblem(s); r != "" {
		d.fail(key, ErrValueNotAllowed, r)
		return "", false
	}
	return s, true
}

// bundlePath reads a path relative to an application bundle's root.
func (d *decoder) bundlePath(key keyPath, v xpc.Object) string {
	s, ok := d.str(key, v)
	if !ok {
		return ""
	}
	if r := RelativePathProblem(s); r != "" {
		d.fail(key, ErrValueNotAllowed, r)
		return ""
	}
	return s
}

// RelativePathProblem says why p is not a path that stays inside the
// directory it is relative to, or "": it must be non-empty, relative,
// clean (no "." or ".." elements, no doubled or trailing '/'), without
// NUL, and at most 4095 bytes. BundleProgram and an Info.plist's
// CFBundleExecutable are such paths.
func RelativePathProblem(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case p == ".":
		return "must name a file, not \".\""
	case len(p) > maxRelPathLen:
		return fmt.Sprintf("longer than %d bytes", maxRelPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return "must not contain NUL"
	case path.IsAbs(p):
		return fmt.Sprintf("must be a path relative to the bundle, have %q", p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Sprintf("must stay inside the bundle: no \"..\" (have %q)", p)
		}
	}
	if path.Clean(p) != p {
		return fmt.Sprintf("must be a clean relative path (no \".\" elements, doubled or trailing '/'), have %q", p)
	}
	return ""
}

// maxRelPathLen is PATH_MAX less the NUL.
const maxRelPathLen = 4095

// pathProblem says why p is not an absolute path, or "".
func pathProblem(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case strings.HasPrefix(p, "~"):
		return fmt.Sprintf("must be an absolute path, have %q (~ is not expanded)", p)
	case !path.IsAbs(p):
		return fmt.Sprintf("must be an absolute path, have %q", p)
	}
	return ""
}

func (d *decoder) dict(key keyPath, v xpc.Object) (*xpc.Dictionary, bool) {
	m, ok := v.(*xpc.Dictionary)
	if !ok {
		d.wrongType(key, "dictionary", v)
	}
	return m, ok
}

func (d *decoder) array(key keyPath, v xpc.Object) (xpc.Array, bool) {
	a, ok := v.(xpc.Array)
	if !ok {
		d.wrongType(key, "array", v)
	}
	return a, ok
}

func (d *decoder) programArguments(key keyPath, v xpc.Object, hasProgram bool) []string {
	a, ok := d.array(key, v)
	if !ok {
		return nil
	}
	if len(a) == 0 {
		d.fail(key, ErrValueNotAllowed, "must not be empty")
		return nil
	}
	args := make([]string, len(a))
	for i, e := range a {
		args[i], _ = d.str(key.index(i), e)
	}
	if _, isString := a[0].(xpc.String); isString && !hasProgram {
		if r := pathProblem(args[0]); r != "" {
			d.fail(key.index(0), ErrValueNotAllowed, r+": without Program it is the executable (launchd would search PATH; goxpc requires an absolute path)")
		}
	}
	return args
}

func (d *decoder) pathList(key keyPath, v xpc.Object) []string {
	a, ok := d.array(key, v)
	if !ok {
		return nil
	}
	if len(a) == 0 {
		return nil
	}
	paths := make([]string, len(a))
	for i, e := range a {
		paths[i], _ = d.absPath(key.index(i), e)
	}
	return paths
}

func (d *decoder) account(key keyPath, v xpc.Object, what string) string {
	s, ok := d.str(key, v)
	if !ok {
		return ""
	}
	if s == "" {
		d.fail(key, ErrValueNotAllowed, "must not be empty")
		return ""
	}
	for _, r := range s {
		if r == ':' || r == '/' || !isGraphic(r) {
			d.fail(key, ErrValueNotAllowed, fmt.Sprintf("not a valid %s name: %q", what, s))
			return ""
		}
	}
	return s
}

func (d *decoder) environment(key keyPath, v xpc.Object) map[string]string {
	m, ok := d.dict(key, v)
	if !ok {
		return nil
	}
	env := make(map[string]string, m.Len())
	for _, name := range sortedKeys(m) {
		k := key.dot(name)
		switch {
		case name == "":
			d.fail(k, ErrValueNotAllowed, "variable name must not be empty")
			continue
		case strings.ContainsAny(name, "=\x00"):
			d.fail(k, ErrValueNotAllowed, "variable name must not contain '=' or NUL")
			continue
		}
		if s, ok := d.str(k, m.Get(name)); ok {
			env[name] = s
		}
	}
	return nilIfEmpty(env)
}

// umask reads launchd's Umask: an integer (decimal, as plists have no
// octal) or a string converted as strtoul(3) with base 0 does ("022" is
// octal).
func (d *decoder) umask(key keyPath, v xpc.Object) *int {
	var n int64
	switch u := v.(type) {
	case xpc.Int64, xpc.Uint64:
		var ok bool
		if n, ok = d.integer(key, v); !ok {
			return nil
		}
	case xpc.String:
		s := strings.TrimSpace(string(u))
		p, err := strconv.ParseInt(s, 0, 64)
		if err != nil || strings.Contains(s, "_") {
			d.fail(key, ErrValueNotAllowed, fmt.Sprintf("not a number: %q (write octal with a leading 0, as in \"022\")", string(u)))
			return nil
		}
		n = p
	default:
		d.wrongType(key, "integer or string", v)
		return nil
	}
	if n < 0 || n > 0o777 {
		d.fail(key, ErrValueNotAllowed, fmt.Sprintf("out of range: want 0 to 0777 (511), have %d (%#o)", n, n))
		return nil
	}
	m := int(n)
	return &m
}

func (d *decoder) processType(key keyPath, v xpc.Object) string {
	s, ok := d.str(key, v)
	if !ok {
		return DefaultProcessType
	}
	switch s {
	case ProcessTypeBackground, ProcessTypeStandard, ProcessTypeAdaptive, ProcessTypeInteractive:
		return s
	}
	d.fail(key, ErrValueNotAllowed, fmt.Sprintf("want Background, Standard, Adaptive or Interactive, have %q", s))
	return DefaultProcessType
}

func (d *decoder) machServices(key keyPath, v xpc.Object) map[string]MachService {
	m, ok := d.dict(key, v)
	if !ok {
		return nil
	}
	services := make(map[string]MachService, m.Len())
	for _, name := range sortedKeys(m) {
		k := key.dot(name)
		if r := serviceNameProblem(name); r != "" {
			d.fail(k, ErrValueNotAllowed, r)
			continue
		}
		switch sv := m.Get(name).(type) {
		case xpc.Bool:
			if !sv {
				d.fail(k, ErrValueNotAllowed, "want true or a dictionary, have false (to drop the name, remove the entry)")
				continue
			}
			services[name] = MachService{}
		case *xpc.Dictionary:
			var ms MachService
			d.fields(k, sv, map[string]field{
				"ResetAtClose":     func(k keyPath, v xpc.Object) { ms.ResetAtClose, _ = d.boolean(k, v) },
				"HideUntilCheckIn": func(k keyPath, v xpc.Object) { ms.HideUntilCheckIn, _ = d.boolean(k, v) },
				"Requirement":      func(k keyPath, v xpc.Object) { ms.Requirement = d.requirement(k, v) },
			}, unsupportedMachServiceKeys)
			services[name] = ms
		default:
			d.wrongType(k, "true or a dictionary", sv)
		}
	}
	return nilIfEmpty(services)
}

// requirement reads a requirement string (xpc.ParseRequirement). A string
// that does not parse is an error naming the column, which wraps
// xpc.ErrBadRequirement as well as ErrValueNotAllowed.
func (d *decoder) requirement(key keyPath, v xpc.Object) xpc.Requirement {
	s, ok := d.str(key, v)
	if !ok {
		return xpc.Requirement{}
	}
	r, err := xpc.ParseRequirement(s)
	if err != nil {
		// "bad requirement: column N: ..."
		d.errs = append(d.errs, &Error{File: d.file, Key: string(key), Reason: strings.TrimPrefix(err.Error(), "xpc: "),
			Err: fmt.Errorf("%w: %w", ErrValueNotAllowed, err)})
		return xpc.Requirement{}
	}
	if r.IsZero() {
		d.fail(key, ErrValueNotAllowed, "empty requirement (to let everyone look the name up, remove the key)")
	}
	return r
}

func (d *decoder) keepAlive(key keyPath, v xpc.Object) KeepAlive {
	var ka KeepAlive
	switch kv := v.(type) {
	case xpc.Bool:
		ka.Always = bool(kv)
	case *xpc.Dictionary:
		optBool := func(dst **bool) field {
			return func(k keyPath, v xpc.Object) {
				if b, ok := d.boolean(k, v); ok {
					*dst = &b
				}
			}
		}
		d.fields(key, kv, map[string]field{
			"SuccessfulExit": optBool(&ka.SuccessfulExit),
			"Crashed":        optBool(&ka.Crashed),
			"PathState": func(k keyPath, v xpc.Object) {
				ka.PathState = d.boolMap(k, v, pathProblem)
			},
			"OtherJobEnabled": func(k keyPath, v xpc.Object) {
				ka.OtherJobEnabled = d.boolMap(k, v, labelProblem)
			},
		}, unsupportedKeepAliveKeys)
	default:
		d.wrongType(key, "bool or dictionary", v)
	}
	return ka
}

// boolMap reads a dictionary of bools whose keys must pass check.
func (d *decoder) boolMap(key keyPath, v xpc.Object, check func(string) string) map[string]bool {
	m, ok := d.dict(key, v)
	if !ok {
		return nil
	}
	out := make(map[string]bool, m.Len())
	for _, name := range sortedKeys(m) {
		k := key.dot(name)
		if r := check(name); r != "" {
			d.fail(k, ErrValueNotAllowed, r)
			continue
		}
		if b, ok := d.boolean(k, m.Get(name)); ok {
			out[name] = b
		}
	}
	return nilIfEmpty(out)
}

func (d *decoder) calendarIntervals(key keyPath, v xpc.Object) []CalendarInterval {
	switch cv := v.(type) {
	case *xpc.Dictionary:
		return []CalendarInterval{d.calendarInterval(key, cv)}
	case xpc.Array:
		if len(cv) == 0 {
			return nil
		}
		out := make([]CalendarInterval, 0, len(cv))
		for i, e := range cv {
			k := key.index(i)
			if m, ok := d.dict(k, e); ok {
				out = append(out, d.calendarInterval(k, m))
			}
		}
		return out
	}
	d.wrongType(key, "dictionary or array of dictionaries", v)
	return nil
}

func (d *decoder) calendarInterval(key keyPath, m *xpc.Dictionary) CalendarInterval {
	var c CalendarInterval
	unit := func(dst **int, lo, hi int64) field {
		return func(k keyPath, v xpc.Object) {
			if n, ok := d.intRange(k, v, lo, hi); ok {
				x := int(n)
				*dst = &x
			}
		}
	}
	d.fields(key, m, map[string]field{
		"Minute":  unit(&c.Minute, 0, 59),
		"Hour":    unit(&c.Hour, 0, 23),
		"Day":     unit(&c.Day, 1, 31),
		"Weekday": unit(&c.Weekday, 0, 7),
		"Month":   unit(&c.Month, 1, 12),
	}, nil)
	// A day the month never has would never fire, unless a Weekday also
	// matches (cron's rule: either one).
	if c.Day != nil && c.Month != nil && c.Weekday == nil && *c.Day > daysIn(*c.Month) {
		d.fail(key.dot("Day"), ErrValueNotAllowed, fmt.Sprintf("day %d never occurs in month %d: the job would never start", *c.Day, *c.Month))
	}
	return c
}

// daysIn returns the most days month (1-12) can have.
func daysIn(month int) int {
	switch month {
	case 2:
		return 29
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// nilIfEmpty normalizes an empty map to nil, as an absent key leaves it.
func nilIfEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

// isGraphic reports whether r is a visible character: not white space, not
// a control or format character, not unassigned.
func isGraphic(r rune) bool {
	return unicode.IsGraphic(r) && !unicode.IsSpace(r)
}

// labelProblem says why s is not a valid label, or "".
func labelProblem(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > MaxLabelLen:
		return fmt.Sprintf("longer than %d bytes", MaxLabelLen)
	case s == "." || s == "..":
		return fmt.Sprintf("must not be %q", s)
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == '/':
			return "must not contain '/'"
		case !isGraphic(r):
			return fmt.Sprintf("must not contain white space or control characters (have %U)", r)
		}
	}
	return ""
}

// serviceNameProblem says why s is not a valid service name, or "".
func serviceNameProblem(s string) string {
	switch {
	case s == "":
		return "service name must not be empty"
	case len(s) > MaxServiceNameLen:
		return fmt.Sprintf("service name longer than %d bytes", MaxServiceNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fmt.Sprintf("service name may hold only letters, digits, '.', '_' and '-' (have %q at byte %d)", c, i)
	}
	return ""
}

// CheckLabel reports whether label is a valid job label: 1 to MaxLabelLen
// bytes of visible characters, no '/', not "." or "..". The error wraps
// ErrValueNotAllowed.
func CheckLabel(label string) error {
	if r := labelProblem(label); r != "" {
		return fmt.Errorf("%w: label %q: %s", ErrValueNotAllowed, label, r)
	}
	return nil
}

// CheckServiceName reports whether name is a valid MachServices name: 1 to
// MaxServiceNameLen bytes of ASCII letters, digits, '.', '_' and '-', as in
// reverse-DNS names ("com.example.helper"). The error wraps ErrValueNotAllowed.
func CheckServiceName(name string) error {
	if r := serviceNameProblem(name); r != "" {
		return fmt.Errorf("%w: %q: %s", ErrValueNotAllowed, name, r)
	}
	return nil
}
