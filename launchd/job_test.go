package launchd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

const testFile = "/etc/xpcd/LaunchDaemons/com.example.test.plist"

// doc wraps dictionary entries in an XML plist document.
func doc(entries string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
` + entries + `
</dict>
</plist>
`
}

// minimal is the smallest valid job.
const minimal = `<key>Label</key><string>com.example.test</string>
<key>Program</key><string>/usr/bin/true</string>`

func ptr[T any](v T) *T { return &v }

func fullJob() *Job {
	return &Job{
		Path:             "testdata/com.example.full.plist",
		Label:            "com.example.helper",
		Program:          "/usr/libexec/example-helper",
		ProgramArguments: []string{"example-helper", "--verbose", "--config=/etc/example/helper.conf"},
		UserName:         "example",
		GroupName:        "staff",
		EnvironmentVariables: map[string]string{
			"LANG":         "en_US.UTF-8",
			"EXAMPLE_MODE": "daemon",
		},
		WorkingDirectory:    "/var/lib/example",
		StandardInPath:      "/dev/null",
		StandardOutPath:     "/var/log/example/helper.out.log",
		StandardErrorPath:   "/var/log/example/helper.err.log",
		Umask:               ptr(0o022),
		Nice:                5,
		ProcessType:         ProcessTypeAdaptive,
		AbandonProcessGroup: true,
		MachServices: map[string]MachService{
			"com.example.helper":       {},
			"com.example.helper.admin": {ResetAtClose: true, HideUntilCheckIn: true},
		},
		RunAtLoad: true,
		KeepAlive: KeepAlive{
			SuccessfulExit:  ptr(false),
			Crashed:         ptr(true),
			PathState:       map[string]bool{"/run/example/enabled": true},
			OtherJobEnabled: map[string]bool{"com.example.db": true},
		},
		StartInterval: time.Hour,
		StartCalendarInterval: []CalendarInterval{
			{Minute: ptr(15), Hour: ptr(3)},
			{Minute: ptr(0), Hour: ptr(12), Weekday: ptr(7)},
		},
		WatchPaths:          []string{"/etc/example/helper.conf"},
		QueueDirectories:    []string{"/var/spool/example"},
		ThrottleInterval:    30 * time.Second,
		ExitTimeOut:         5 * time.Second,
		EnableTransactions:  true,
		EnablePressuredExit: true,
		IdleExitTimeout:     time.Minute,
		Warnings: []Warning{
			{Key: "LimitLoadToSessionType", Reason: reasonUnsupported},
			{Key: "X-Example-Comment", Reason: reasonUnknown},
		},
	}
}

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile("testdata/com.example.full.plist")
	if err != nil {
		t.Fatal(err)
	}
	want := fullJob()
	got, err := Load("testdata/com.example.full.plist")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("XML:\n got %+v\nwant %+v", got, want)
	}

	// The same document in binary.
	obj, format, err := xpc.FromPlist(data)
	if err != nil || format != xpc.PlistXML {
		t.Fatalf("FromPlist: %v, %v", format, err)
	}
	bin, err := xpc.ToPlist(obj, xpc.PlistBinary)
	if err != nil {
		t.Fatal(err)
	}
	gotBin, err := Parse(want.Path, bin)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotBin, want) {
		t.Errorf("binary:\n got %+v\nwant %+v", gotBin, want)
	}
	if got.Fingerprint() != gotBin.Fingerprint() {
		t.Error("XML and binary fingerprints differ")
	}

	if a := got.Argv(); !reflect.DeepEqual(a, want.ProgramArguments) {
		t.Errorf("Argv = %q", a)
	}
	if e := got.Executable(); e != want.Program {
		t.Errorf("Executable = %q", e)
	}
	if !got.StartsAtLoad() || !got.TracksTransactions() {
		t.Error("StartsAtLoad or TracksTransactions false")
	}
}

func TestDefaults(t *testing.T) {
	j, err := Parse(testFile, []byte(doc(minimal)))
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{
		Path:             testFile,
		Label:            "com.example.test",
		Program:          "/usr/bin/true",
		ThrottleInterval: 10 * time.Second,
		ExitTimeOut:      20 * time.Second,
		ProcessType:      ProcessTypeStandard,
	}
	if !reflect.DeepEqual(j, want) {
		t.Errorf("got %+v\nwant %+v", j, want)
	}
	if a := j.Argv(); !reflect.DeepEqual(a, []string{"/usr/bin/true"}) {
		t.Errorf("Argv = %q", a)
	}
	if j.StartsAtLoad() || j.KeepAlive.ShouldRestart(true, false) || j.KeepAlive.ShouldRestart(false, true) {
		t.Error("an on-demand job would start or restart")
	}

	// ProgramArguments alone: argv[0] is the executable.
	j, err = Parse(testFile, []byte(doc(`<key>Label</key><string>x</string>
<key>ProgramArguments</key><array><string>/bin/sleep</string><string>5</string></array>`)))
	if err != nil {
		t.Fatal(err)
	}
	if j.Executable() != "/bin/sleep" || !reflect.DeepEqual(j.Argv(), []string{"/bin/sleep", "5"}) {
		t.Errorf("Executable %q, Argv %q", j.Executable(), j.Argv())
	}
	j.Argv()[0] = "changed"
	if j.ProgramArguments[0] != "/bin/sleep" {
		t.Error("Argv returned the job's own slice")
	}

	// A disabled job is valid.
	j, err = Parse(testFile, []byte(doc(minimal+`<key>Disabled</key><true/>`)))
	if err != nil || !j.Disabled {
		t.Errorf("Disabled: %v, %v", j, err)
	}
}

// checkErr asserts that err is exactly one *Error of kind at key, whose
// message names the file, the key and the reason.
func checkErr(t *testing.T, err error, kind error, key, reason string) {
	t.Helper()
	errs := Errors(err)
	if len(errs) != 1 {
		t.Fatalf("want one error, have %d: %v", len(errs), err)
	}
	e := errs[0]
	if !errors.Is(err, kind) {
		t.Errorf("%v: not %v", err, kind)
	}
	if e.Key != key {
		t.Errorf("Key = %q, want %q (%v)", e.Key, key, err)
	}
	if e.File != testFile {
		t.Errorf("File = %q", e.File)
	}
	if !strings.Contains(e.Reason, reason) {
		t.Errorf("Reason %q lacks %q", e.Reason, reason)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, testFile+": ") || (key != "" && !strings.Contains(msg, ": "+key+": ")) || !strings.Contains(msg, reason) {
		t.Errorf("message %q does not name file, key %q and reason %q", msg, key, reason)
	}
}

const (
	labelEntry   = `<key>Label</key><string>com.example.test</string>`
	programEntry = `<key>Program</key><string>/usr/bin/true</string>`
)

var validationTests = []struct {
	name    string
	entries string
	kind    error
	key     string
	reason  string
}{
	// Required keys.
	{"no label", programEntry, ErrMissingKey, "Label", "required key missing"},
	{"label in other case", programEntry + `<key>label</key><string>x</string>`, ErrMissingKey, "Label", `found "label": keys are case-sensitive`},
	{"no program", labelEntry, ErrMissingKey, "Program", "Program, ProgramArguments or BundleProgram"},
	// Label.
	{"label type", programEntry + `<key>Label</key><integer>1</integer>`, ErrBadType, "Label", "want string, have integer"},
	{"label empty", programEntry + `<key>Label</key><string></string>`, ErrValueNotAllowed, "Label", "must not be empty"},
	{"label slash", programEntry + `<key>Label</key><string>com/example</string>`, ErrValueNotAllowed, "Label", "must not contain '/'"},
	{"label space", programEntry + `<key>Label</key><string>com.example test</string>`, ErrValueNotAllowed, "Label", "white space"},
	{"label tab", programEntry + `<key>Label</key><string>com.example&#9;test</string>`, ErrValueNotAllowed, "Label", "white space or control"},
	{"label dotdot", programEntry + `<key>Label</key><string>..</string>`, ErrValueNotAllowed, "Label", `must not be ".."`},
	{"label long", programEntry + `<key>Label</key><string>` + strings.Repeat("a", 256) + `</string>`, ErrValueNotAllowed, "Label", "longer than 255"},
	// Program and ProgramArguments.
	{"program relative", labelEntry + `<key>Program</key><string>bin/helper</string>`, ErrValueNotAllowed, "Program", `must be an absolute path, have "bin/helper"`},
	{"program tilde", labelEntry + `<key>Program</key><string>~/bin/helper</string>`, ErrValueNotAllowed, "Program", "~ is not expanded"},
	{"program type", labelEntry + `<key>Program</key><array/>`, ErrBadType, "Program", "want string, have array"},
	{"bundle program absolute", labelEntry + `<key>BundleProgram</key><string>/usr/bin/true</string>`, ErrValueNotAllowed, "BundleProgram", "must be a path relative to the bundle"},
	{"bundle program dotdot", labelEntry + `<key>BundleProgram</key><string>Contents/../../evil</string>`, ErrValueNotAllowed, "BundleProgram", `no ".."`},
	{"bundle program unclean", labelEntry + `<key>BundleProgram</key><string>Contents//MacOS/x</string>`, ErrValueNotAllowed, "BundleProgram", "clean relative path"},
	{"bundle program empty", labelEntry + `<key>BundleProgram</key><string></string>`, ErrValueNotAllowed, "BundleProgram", "must not be empty"},
	{"bundle program type", labelEntry + `<key>BundleProgram</key><true/>`, ErrBadType, "BundleProgram", "want string, have bool"},
	{"args relative", labelEntry + `<key>ProgramArguments</key><array><string>sleep</string></array>`, ErrValueNotAllowed, "ProgramArguments[0]", "launchd would search PATH; goxpc requires an absolute path"},
	{"args empty", labelEntry + programEntry + `<key>ProgramArguments</key><array/>`, ErrValueNotAllowed, "ProgramArguments", "must not be empty"},
	{"args entry type", labelEntry + programEntry + `<key>ProgramArguments</key><array><string>a</string><integer>2</integer></array>`, ErrBadType, "ProgramArguments[1]", "want string, have integer"},
	{"args type", labelEntry + programEntry + `<key>ProgramArguments</key><string>/bin/sh -c x</string>`, ErrBadType, "ProgramArguments", "want array, have string"},
	// Booleans.
	{"RunAtLoad type", labelEntry + programEntry + `<key>RunAtLoad</key><string>true</string>`, ErrBadType, "RunAtLoad", "want bool, have string"},
	{"Disabled type", labelEntry + programEntry + `<key>Disabled</key><integer>1</integer>`, ErrBadType, "Disabled", "want bool, have integer"},
	{"EnableTransactions type", labelEntry + programEntry + `<key>EnableTransactions</key><real>1</real>`, ErrBadType, "EnableTransactions", "want bool, have real"},
	// MachServices.
	{"mach type", labelEntry + programEntry + `<key>MachServices</key><array/>`, ErrBadType, "MachServices", "want dictionary, have array"},
	{"mach value type", labelEntry + programEntry + `<key>MachServices</key><dict><key>com.example.x</key><string>yes</string></dict>`, ErrBadType, "MachServices.com.example.x", "want true or a dictionary, have string"},
	{"mach false", labelEntry + programEntry + `<key>MachServices</key><dict><key>com.example.x</key><false/></dict>`, ErrValueNotAllowed, "MachServices.com.example.x", "have false"},
	{"mach name space", labelEntry + programEntry + `<key>MachServices</key><dict><key>com.example x</key><true/></dict>`, ErrValueNotAllowed, `MachServices."com.example x"`, "only letters, digits"},
	{"mach name slash", labelEntry + programEntry + `<key>MachServices</key><dict><key>com/example</key><true/></dict>`, ErrValueNotAllowed, "MachServices.com/example", "have '/' at byte 3"},
	{"mach name empty", labelEntry + programEntry + `<key>MachServices</key><dict><key></key><true/></dict>`, ErrValueNotAllowed, `MachServices.""`, "must not be empty"},
	{"mach option type", labelEntry + programEntry + `<key>MachServices</key><dict><key>com.example.x</key><dict><key>ResetAtClose</key><string>no</string></dict></dict>`, ErrBadType, "MachServices.com.example.x.ResetAtClose", "want bool, have string"},
	// KeepAlive.
	{"keepalive type", labelEntry + programEntry + `<key>KeepAlive</key><string>yes</string>`, ErrBadType, "KeepAlive", "want bool or dictionary, have string"},
	{"keepalive successfulexit type", labelEntry + programEntry + `<key>KeepAlive</key><dict><key>SuccessfulExit</key><string>no</string></dict>`, ErrBadType, "KeepAlive.SuccessfulExit", "want bool, have string"},
	{"keepalive pathstate relative", labelEntry + programEntry + `<key>KeepAlive</key><dict><key>PathState</key><dict><key>run/x</key><true/></dict></dict>`, ErrValueNotAllowed, "KeepAlive.PathState.run/x", "absolute path"},
	{"keepalive otherjob label", labelEntry + programEntry + `<key>KeepAlive</key><dict><key>OtherJobEnabled</key><dict><key>a/b</key><true/></dict></dict>`, ErrValueNotAllowed, "KeepAlive.OtherJobEnabled.a/b", "'/'"},
	// Durations.
	{"throttle negative", labelEntry + programEntry + `<key>ThrottleInterval</key><integer>-1</integer>`, ErrValueNotAllowed, "ThrottleInterval", "must not be negative, have -1"},
	{"throttle type", labelEntry + programEntry + `<key>ThrottleInterval</key><string>10</string>`, ErrBadType, "ThrottleInterval", "want integer, have string"},
	{"exittimeout real", labelEntry + programEntry + `<key>ExitTimeOut</key><real>2.5</real>`, ErrBadType, "ExitTimeOut", "want integer, have real"},
	{"startinterval huge", labelEntry + programEntry + `<key>StartInterval</key><integer>4294967296</integer>`, ErrValueNotAllowed, "StartInterval", "at most 2147483647 seconds"},
	{"idle negative", labelEntry + programEntry + `<key>XPCIdleExitTimeout</key><integer>-30</integer>`, ErrValueNotAllowed, "XPCIdleExitTimeout", "must not be negative"},
	{"uint64 integer", labelEntry + programEntry + `<key>StartInterval</key><integer>18446744073709551615</integer>`, ErrValueNotAllowed, "StartInterval", "out of range"},
	// Environment.
	{"env type", labelEntry + programEntry + `<key>EnvironmentVariables</key><array/>`, ErrBadType, "EnvironmentVariables", "want dictionary, have array"},
	{"env value type", labelEntry + programEntry + `<key>EnvironmentVariables</key><dict><key>N</key><integer>1</integer></dict>`, ErrBadType, "EnvironmentVariables.N", "want string, have integer"},
	{"env name equals", labelEntry + programEntry + `<key>EnvironmentVariables</key><dict><key>A=B</key><string>1</string></dict>`, ErrValueNotAllowed, "EnvironmentVariables.A=B", "must not contain '='"},
	{"env name empty", labelEntry + programEntry + `<key>EnvironmentVariables</key><dict><key></key><string>1</string></dict>`, ErrValueNotAllowed, `EnvironmentVariables.""`, "must not be empty"},
	// Paths.
	{"stdout relative", labelEntry + programEntry + `<key>StandardOutPath</key><string>out.log</string>`, ErrValueNotAllowed, "StandardOutPath", "absolute path"},
	{"stderr relative", labelEntry + programEntry + `<key>StandardErrorPath</key><string>./err.log</string>`, ErrValueNotAllowed, "StandardErrorPath", "absolute path"},
	{"stdin relative", labelEntry + programEntry + `<key>StandardInPath</key><string>in</string>`, ErrValueNotAllowed, "StandardInPath", "absolute path"},
	{"workdir relative", labelEntry + programEntry + `<key>WorkingDirectory</key><string>var/lib</string>`, ErrValueNotAllowed, "WorkingDirectory", "absolute path"},
	{"workdir empty", labelEntry + programEntry + `<key>WorkingDirectory</key><string></string>`, ErrValueNotAllowed, "WorkingDirectory", "must not be empty"},
	{"watchpaths relative", labelEntry + programEntry + `<key>WatchPaths</key><array><string>/etc/a</string><string>etc/b</string></array>`, ErrValueNotAllowed, "WatchPaths[1]", "absolute path"},
	{"watchpaths type", labelEntry + programEntry + `<key>WatchPaths</key><string>/etc/a</string>`, ErrBadType, "WatchPaths", "want array, have string"},
	{"queuedirs relative", labelEntry + programEntry + `<key>QueueDirectories</key><array><string>spool</string></array>`, ErrValueNotAllowed, "QueueDirectories[0]", "absolute path"},
	// ProcessType, accounts, Umask, Nice.
	{"processtype", labelEntry + programEntry + `<key>ProcessType</key><string>background</string>`, ErrValueNotAllowed, "ProcessType", `want Background, Standard, Adaptive or Interactive, have "background"`},
	{"username empty", labelEntry + programEntry + `<key>UserName</key><string></string>`, ErrValueNotAllowed, "UserName", "must not be empty"},
	{"groupname colon", labelEntry + programEntry + `<key>GroupName</key><string>a:b</string>`, ErrValueNotAllowed, "GroupName", "not a valid group name"},
	{"umask range", labelEntry + programEntry + `<key>Umask</key><integer>512</integer>`, ErrValueNotAllowed, "Umask", "out of range"},
	{"umask string", labelEntry + programEntry + `<key>Umask</key><string>0999</string>`, ErrValueNotAllowed, "Umask", "not a number"},
	{"umask type", labelEntry + programEntry + `<key>Umask</key><true/>`, ErrBadType, "Umask", "want integer or string, have bool"},
	{"nice range", labelEntry + programEntry + `<key>Nice</key><integer>21</integer>`, ErrValueNotAllowed, "Nice", "want -20 to 20, have 21"},
	// StartCalendarInterval.
	{"calendar type", labelEntry + programEntry + `<key>StartCalendarInterval</key><string>daily</string>`, ErrBadType, "StartCalendarInterval", "want dictionary or array of dictionaries, have string"},
	{"calendar minute", labelEntry + programEntry + `<key>StartCalendarInterval</key><dict><key>Minute</key><integer>60</integer></dict>`, ErrValueNotAllowed, "StartCalendarInterval.Minute", "want 0 to 59, have 60"},
	{"calendar hour", labelEntry + programEntry + `<key>StartCalendarInterval</key><array><dict/><dict><key>Hour</key><integer>24</integer></dict></array>`, ErrValueNotAllowed, "StartCalendarInterval[1].Hour", "want 0 to 23, have 24"},
	{"calendar day", labelEntry + programEntry + `<key>StartCalendarInterval</key><dict><key>Day</key><integer>0</integer></dict>`, ErrValueNotAllowed, "StartCalendarInterval.Day", "want 1 to 31, have 0"},
	{"calendar weekday", labelEntry + programEntry + `<key>StartCalendarInterval</key><dict><key>Weekday</key><integer>8</integer></dict>`, ErrValueNotAllowed, "StartCalendarInterval.Weekday", "want 0 to 7, have 8"},
	{"calendar month", labelEntry + programEntry + `<key>StartCalendarInterval</key><dict><key>Month</key><integer>13</integer></dict>`, ErrValueNotAllowed, "StartCalendarInterval.Month", "want 1 to 12, have 13"},
	{"calendar entry type", labelEntry + programEntry + `<key>StartCalendarInterval</key><array><integer>5</integer></array>`, ErrBadType, "StartCalendarInterval[0]", "want dictionary, have integer"},
	{"calendar field type", labelEntry + programEntry + `<key>StartCalendarInterval</key><dict><key>Hour</key><string>3</string></dict>`, ErrBadType, "StartCalendarInterval.Hour", "want integer, have string"},
	{"calendar never", labelEntry + programEntry + `<key>StartCalendarInterval</key><dict><key>Day</key><integer>31</integer><key>Month</key><integer>4</integer></dict>`, ErrValueNotAllowed, "StartCalendarInterval.Day", "day 31 never occurs in month 4"},
	{"calendar feb 30", labelEntry + programEntry + `<key>StartCalendarInterval</key><array><dict><key>Day</key><integer>30</integer><key>Month</key><integer>2</integer></dict></array>`, ErrValueNotAllowed, "StartCalendarInterval[0].Day", "never occurs"},
	// Not a job definition at all.
	{"root array", ``, ErrNotJob, "", "the root is an array, not a dictionary"},
}

func TestValidation(t *testing.T) {
	for _, tt := range validationTests {
		t.Run(tt.name, func(t *testing.T) {
			data := doc(tt.entries)
			if tt.name == "root array" {
				data = `<plist version="1.0"><array/></plist>`
			}
			j, err := Parse(testFile, []byte(data))
			if j != nil {
				t.Errorf("half-loaded job: %+v", j)
			}
			checkErr(t, err, tt.kind, tt.key, tt.reason)
		})
	}
}

func TestValidButOdd(t *testing.T) {
	// Feb 29 is possible; Day 31 of April with a Weekday fires on the weekday.
	for _, e := range []string{
		`<key>StartCalendarInterval</key><dict><key>Day</key><integer>29</integer><key>Month</key><integer>2</integer></dict>`,
		`<key>StartCalendarInterval</key><dict><key>Day</key><integer>31</integer><key>Month</key><integer>4</integer><key>Weekday</key><integer>1</integer></dict>`,
		`<key>StartCalendarInterval</key><array/>`,
		`<key>StartCalendarInterval</key><dict/>`,
		`<key>Umask</key><string>077</string>`,
		`<key>Nice</key><integer>-20</integer>`,
		`<key>ThrottleInterval</key><integer>0</integer>`,
		`<key>KeepAlive</key><dict/>`,
		`<key>MachServices</key><dict/>`,
		`<key>ProgramArguments</key><array><string></string></array>`, // argv[0] may be anything when Program is set
	} {
		if _, err := Parse(testFile, []byte(doc(minimal+e))); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
	j, err := Parse(testFile, []byte(doc(minimal+`<key>Umask</key><string>077</string>`)))
	if err != nil || j.Umask == nil || *j.Umask != 0o77 {
		t.Errorf("Umask string: %v, %v", j, err)
	}
	j, err = Parse(testFile, []byte(doc(minimal+`<key>Umask</key><integer>63</integer>`)))
	if err != nil || j.Umask == nil || *j.Umask != 0o77 {
		t.Errorf("Umask integer: %v, %v", j, err)
	}
}

func TestBadInput(t *testing.T) {
	for _, data := range []string{"", "   \n", "not a plist <", "<plist><dict><key>Label</key></dict></plist>", "bplist00\x00\x01"} {
		j, err := Parse(testFile, []byte(data))
		if j != nil || !errors.Is(err, ErrNotJob) {
			t.Errorf("%q: %v, %v", data, j, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), testFile+": ") {
			t.Errorf("%q: message %q does not name the file", data, err)
		}
	}
	big := make([]byte, MaxFileSize+1)
	if _, err := Parse(testFile, big); !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("large input: %v", err)
	}
	if _, err := FromDictionary(testFile, nil); !errors.Is(err, ErrNotJob) {
		t.Errorf("nil dictionary: %v", err)
	}
}

func TestMultipleErrors(t *testing.T) {
	data := doc(`<key>Program</key><string>relative</string>
<key>RunAtLoad</key><string>yes</string>
<key>KeepAlive</key><dict><key>SuccessfulExit</key><string>no</string></dict>
<key>StartCalendarInterval</key><array><dict><key>Hour</key><integer>25</integer></dict></array>`)
	j, err := Parse(testFile, []byte(data))
	if j != nil {
		t.Fatalf("half-loaded job: %+v", j)
	}
	var got []string
	for _, e := range Errors(err) {
		got = append(got, e.Key)
	}
	want := []string{"Label", "KeepAlive.SuccessfulExit", "Program", "RunAtLoad", "StartCalendarInterval[0].Hour"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	for _, kind := range []error{ErrMissingKey, ErrBadType, ErrValueNotAllowed} {
		if !errors.Is(err, kind) {
			t.Errorf("not %v", kind)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Key != "Label" {
		t.Errorf("errors.As: %v", e)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("message has %d lines, want %d:\n%s", len(lines), len(want), err)
	}
}

func TestWarnings(t *testing.T) {
	data := doc(minimal + `
<key>Sockets</key><dict/>
<key>OnDemand</key><false/>
<key>RunAtload</key><true/>
<key>ProgramArgument</key><array/>
<key>com.example.custom</key><string>x</string>
<key>ExitTimeOut</key><integer>0</integer>
<key>StartInterval</key><integer>0</integer>
<key>KeepAlive</key><dict><key>NetworkState</key><true/><key>Crashd</key><true/></dict>
<key>MachServices</key><dict><key>com.example.x</key><dict><key>TaskSpecialPort</key><integer>4</integer></dict></dict>
<key>StartCalendarInterval</key><dict><key>Minutes</key><integer>5</integer></dict>`)
	j, err := Parse(testFile, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Warning{
		{"ExitTimeOut", "0 means never send SIGKILL: a job that ignores SIGTERM is never stopped"},
		{"KeepAlive.Crashd", "unknown key: ignored (did you mean Crashed?)"},
		{"KeepAlive.NetworkState", reasonDeprecated},
		{"MachServices.com.example.x.TaskSpecialPort", reasonUnsupported},
		{"OnDemand", "deprecated by launchd (use KeepAlive): ignored"},
		{"ProgramArgument", "unknown key: ignored (did you mean ProgramArguments?)"},
		{"RunAtload", "unknown key: ignored (keys are case-sensitive; did you mean RunAtLoad?)"},
		{"Sockets", reasonUnsupported},
		{"StartCalendarInterval.Minutes", "unknown key: ignored (did you mean Minute?)"},
		{"StartInterval", "0 means no interval: ignored"},
		{"com.example.custom", reasonUnknown},
	}
	if !reflect.DeepEqual(j.Warnings, want) {
		t.Errorf("warnings:\n%v\nwant\n%v", j.Warnings, want)
	}
	if j.RunAtLoad {
		t.Error("RunAtload was read as RunAtLoad")
	}
	if j.ExitTimeOut != 0 || j.StartInterval != 0 {
		t.Errorf("ExitTimeOut %v, StartInterval %v", j.ExitTimeOut, j.StartInterval)
	}
	if s := want[0].String(); s != "ExitTimeOut: "+want[0].Reason {
		t.Errorf("Warning.String = %q", s)
	}
}

func TestKeepAliveForms(t *testing.T) {
	tests := []struct {
		entries string
		want    KeepAlive
		atLoad  bool
	}{
		{`<key>KeepAlive</key><true/>`, KeepAlive{Always: true}, true},
		{`<key>KeepAlive</key><false/>`, KeepAlive{}, false},
		{`<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>`, KeepAlive{SuccessfulExit: ptr(false)}, true},
		{`<key>KeepAlive</key><dict><key>Crashed</key><true/></dict>`, KeepAlive{Crashed: ptr(true)}, false},
		{`<key>KeepAlive</key><dict><key>PathState</key><dict><key>/tmp/a</key><false/></dict><key>OtherJobEnabled</key><dict><key>com.example.other</key><true/></dict></dict>`,
			KeepAlive{PathState: map[string]bool{"/tmp/a": false}, OtherJobEnabled: map[string]bool{"com.example.other": true}}, false},
	}
	for _, tt := range tests {
		j, err := Parse(testFile, []byte(doc(minimal+tt.entries)))
		if err != nil {
			t.Errorf("%s: %v", tt.entries, err)
			continue
		}
		if !reflect.DeepEqual(j.KeepAlive, tt.want) {
			t.Errorf("%s: got %+v", tt.entries, j.KeepAlive)
		}
		if j.StartsAtLoad() != tt.atLoad {
			t.Errorf("%s: StartsAtLoad %v", tt.entries, !tt.atLoad)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	// The ends a job can have: a clean exit, a failing exit or a
	// non-crash signal, a crash.
	type end struct{ clean, crashed bool }
	clean, failed, crashed := end{true, false}, end{false, false}, end{false, true}
	tests := []struct {
		name string
		k    KeepAlive
		want map[end]bool
	}{
		{"false", KeepAlive{}, map[end]bool{clean: false, failed: false, crashed: false}},
		{"true", KeepAlive{Always: true}, map[end]bool{clean: true, failed: true, crashed: true}},
		{"SuccessfulExit true", KeepAlive{SuccessfulExit: ptr(true)}, map[end]bool{clean: true, failed: false, crashed: false}},
		{"SuccessfulExit false", KeepAlive{SuccessfulExit: ptr(false)}, map[end]bool{clean: false, failed: true, crashed: true}},
		{"Crashed true", KeepAlive{Crashed: ptr(true)}, map[end]bool{clean: false, failed: false, crashed: true}},
		{"Crashed false", KeepAlive{Crashed: ptr(false)}, map[end]bool{clean: true, failed: true, crashed: false}},
		{"SuccessfulExit true, Crashed true", KeepAlive{SuccessfulExit: ptr(true), Crashed: ptr(true)}, map[end]bool{clean: true, failed: false, crashed: true}},
		{"state conditions only", KeepAlive{PathState: map[string]bool{"/x": true}}, map[end]bool{clean: false, failed: false, crashed: false}},
	}
	for _, tt := range tests {
		for e, want := range tt.want {
			if got := tt.k.ShouldRestart(e.clean, e.crashed); got != want {
				t.Errorf("%s: ShouldRestart(clean=%v, crashed=%v) = %v", tt.name, e.clean, e.crashed, got)
			}
		}
	}

	k := KeepAlive{PathState: map[string]bool{"/present": false, "/absent": false}, OtherJobEnabled: map[string]bool{"com.example.db": true}}
	exists := func(p string) bool { return p == "/present" }
	none := func(string) bool { return false }
	if !k.StateWantsRunning(exists, nil) {
		t.Error("/absent is missing as wanted")
	}
	if k.StateWantsRunning(func(string) bool { return true }, none) {
		t.Error("no condition holds")
	}
	if !k.StateWantsRunning(nil, func(l string) bool { return l == "com.example.db" }) {
		t.Error("com.example.db is loaded as wanted")
	}

	for sig, want := range map[syscall.Signal]bool{
		syscall.SIGSEGV: true, syscall.SIGABRT: true, syscall.SIGILL: true, syscall.SIGBUS: true,
		syscall.SIGFPE: true, syscall.SIGTRAP: true, syscall.SIGSYS: true,
		syscall.SIGKILL: false, syscall.SIGTERM: false, syscall.SIGHUP: false, syscall.SIGINT: false,
	} {
		if CrashSignal(sig) != want {
			t.Errorf("CrashSignal(%v) = %v", sig, !want)
		}
	}
}

func TestCalendarForms(t *testing.T) {
	j, err := Parse(testFile, []byte(doc(minimal+`<key>StartCalendarInterval</key><dict><key>Hour</key><integer>4</integer><key>Weekday</key><integer>0</integer></dict>`)))
	if err != nil {
		t.Fatal(err)
	}
	want := []CalendarInterval{{Hour: ptr(4), Weekday: ptr(0)}}
	if !reflect.DeepEqual(j.StartCalendarInterval, want) {
		t.Errorf("dict form: %+v", j.StartCalendarInterval)
	}
	j, err = Parse(testFile, []byte(doc(minimal+`<key>StartCalendarInterval</key><array>
<dict><key>Minute</key><integer>0</integer></dict>
<dict><key>Month</key><integer>12</integer><key>Day</key><integer>25</integer><key>Hour</key><integer>9</integer><key>Minute</key><integer>30</integer></dict>
</array>`)))
	if err != nil {
		t.Fatal(err)
	}
	want = []CalendarInterval{{Minute: ptr(0)}, {Minute: ptr(30), Hour: ptr(9), Day: ptr(25), Month: ptr(12)}}
	if !reflect.DeepEqual(j.StartCalendarInterval, want) {
		t.Errorf("array form: %+v", j.StartCalendarInterval)
	}
	if s := want[1].String(); s != "30 9 25 12 *" {
		t.Errorf("String = %q", s)
	}
	if s := (CalendarInterval{}).String(); s != "* * * * *" {
		t.Errorf("String = %q", s)
	}
}

func TestCalendarNext(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name  string
		c     CalendarInterval
		after string
		want  string
	}{
		{"every minute", CalendarInterval{}, "2024-03-10 10:20:30", "2024-03-10 10:21:00"},
		{"every minute, on the minute", CalendarInterval{}, "2024-03-10 10:20:00", "2024-03-10 10:21:00"},
		{"minute later this hour", CalendarInterval{Minute: ptr(45)}, "2024-03-10 10:20:00", "2024-03-10 10:45:00"},
		{"minute next hour", CalendarInterval{Minute: ptr(15)}, "2024-03-10 10:20:00", "2024-03-10 11:15:00"},
		{"daily, tomorrow", CalendarInterval{Hour: ptr(3), Minute: ptr(15)}, "2024-03-10 03:15:00", "2024-03-11 03:15:00"},
		{"hour with any minute", CalendarInterval{Hour: ptr(3)}, "2024-03-10 03:59:00", "2024-03-11 03:00:00"},
		{"year end rollover", CalendarInterval{Hour: ptr(0), Minute: ptr(0)}, "2024-12-31 23:59:59", "2025-01-01 00:00:00"},
		// 2024-03-10 is a Sunday.
		{"weekday 7 is Sunday", CalendarInterval{Weekday: ptr(7), Hour: ptr(12), Minute: ptr(0)}, "2024-03-10 13:00:00", "2024-03-17 12:00:00"},
		{"weekday 0 is Sunday", CalendarInterval{Weekday: ptr(0), Hour: ptr(12), Minute: ptr(0)}, "2024-03-10 11:00:00", "2024-03-10 12:00:00"},
		{"weekday Monday", CalendarInterval{Weekday: ptr(1), Hour: ptr(9), Minute: ptr(0)}, "2024-03-10 11:00:00", "2024-03-11 09:00:00"},
		{"month rollover, day 31", CalendarInterval{Day: ptr(31), Hour: ptr(8), Minute: ptr(0)}, "2024-04-01 00:00:00", "2024-05-31 08:00:00"},
		{"month rollover, day 1", CalendarInterval{Day: ptr(1), Hour: ptr(0), Minute: ptr(0)}, "2024-01-31 12:00:00", "2024-02-01 00:00:00"},
		{"month", CalendarInterval{Month: ptr(6), Day: ptr(1), Hour: ptr(0), Minute: ptr(0)}, "2024-06-01 00:00:00", "2025-06-01 00:00:00"},
		{"feb 29, leap year", CalendarInterval{Month: ptr(2), Day: ptr(29), Hour: ptr(6), Minute: ptr(30)}, "2023-05-01 00:00:00", "2024-02-29 06:30:00"},
		{"feb 29, after one", CalendarInterval{Month: ptr(2), Day: ptr(29), Hour: ptr(6), Minute: ptr(30)}, "2024-02-29 06:30:00", "2028-02-29 06:30:00"},
		{"feb 29, across 2100", CalendarInterval{Month: ptr(2), Day: ptr(29), Hour: ptr(0), Minute: ptr(0)}, "2096-03-01 00:00:00", "2104-02-29 00:00:00"},
		{"day 29 any month skips feb", CalendarInterval{Day: ptr(29), Hour: ptr(0), Minute: ptr(0)}, "2023-01-30 00:00:00", "2023-03-29 00:00:00"},
		// Day and Weekday: either matches (cron). 2024-03-15 is a Friday.
		{"day or weekday, weekday first", CalendarInterval{Day: ptr(20), Weekday: ptr(5), Hour: ptr(0), Minute: ptr(0)}, "2024-03-12 00:00:00", "2024-03-15 00:00:00"},
		{"day or weekday, day first", CalendarInterval{Day: ptr(13), Weekday: ptr(5), Hour: ptr(0), Minute: ptr(0)}, "2024-03-12 00:00:00", "2024-03-13 00:00:00"},
		{"month and weekday", CalendarInterval{Month: ptr(4), Weekday: ptr(1), Hour: ptr(0), Minute: ptr(0)}, "2024-03-12 00:00:00", "2024-04-01 00:00:00"},
	}
	for _, tt := range tests {
		got := tt.c.Next(utc(tt.after))
		if want := utc(tt.want); !got.Equal(want) {
			t.Errorf("%s: %v.Next(%s) = %v, want %s", tt.name, tt.c, tt.after, got, tt.want)
		}
	}

	// Never: an impossible date, and a field out of range.
	for _, c := range []CalendarInterval{{Month: ptr(4), Day: ptr(31)}, {Minute: ptr(60)}, {Weekday: ptr(-1)}} {
		if got := c.Next(utc("2024-01-01 00:00:00")); !got.IsZero() {
			t.Errorf("%v.Next = %v, want zero", c, got)
		}
	}
}

func TestCalendarNextDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	// 2024-03-10 02:00 to 03:00 does not exist in New York.
	c := CalendarInterval{Hour: ptr(2), Minute: ptr(30)}
	got := c.Next(time.Date(2024, 3, 9, 12, 0, 0, 0, ny))
	if want := time.Date(2024, 3, 11, 2, 30, 0, 0, ny); !got.Equal(want) {
		t.Errorf("spring forward: %v, want %v", got, want)
	}
	// The result is in the location of after.
	if got.Location() != ny {
		t.Errorf("location %v", got.Location())
	}
	// 2024-11-03 01:30 happens twice; it matches once that day.
	c = CalendarInterval{Hour: ptr(1), Minute: ptr(30)}
	first := c.Next(time.Date(2024, 11, 3, 0, 0, 0, 0, ny))
	if first.Day() != 3 || first.Hour() != 1 {
		t.Fatalf("fall back: %v", first)
	}
	if second := c.Next(first); second.Day() != 4 {
		t.Errorf("fall back: matched again at %v", second)
	}
}

func TestFingerprint(t *testing.T) {
	a := doc(minimal + `<key>RunAtLoad</key><true/><key>MachServices</key><dict><key>com.example.a</key><true/><key>com.example.b</key><true/></dict>`)
	b := doc(`<key>MachServices</key><dict><key>com.example.b</key><true/><key>com.example.a</key><true/></dict>
<key>RunAtLoad</key><true/>` + minimal + `
<key>ThrottleInterval</key><integer>10</integer>
<key>MachServices_comment</key><string>unknown keys do not count</string>`)
	ja, err := Parse("a.plist", []byte(a))
	if err != nil {
		t.Fatal(err)
	}
	jb, err := Parse("b.plist", []byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if ja.Fingerprint() != jb.Fingerprint() || !ja.Equal(jb) {
		t.Errorf("same job, different fingerprints:\n%s\n%s", xpc.Format(ja.ToDictionary()), xpc.Format(jb.ToDictionary()))
	}
	if len(ja.Fingerprint()) != 64 {
		t.Errorf("fingerprint %q", ja.Fingerprint())
	}
	// Stable across calls (map iteration order must not leak in).
	for range 20 {
		if full := fullJob(); full.Fingerprint() != fullJob().Fingerprint() {
			t.Fatal("fingerprint not stable")
		}
	}

	changes := []func(j *Job){
		func(j *Job) { j.RunAtLoad = false },
		func(j *Job) { j.ThrottleInterval = 11 * time.Second },
		func(j *Job) { j.MachServices["com.example.a"] = MachService{ResetAtClose: true} },
		func(j *Job) { j.ProgramArguments = []string{"/usr/bin/true", "x"} },
		func(j *Job) { j.KeepAlive.Crashed = ptr(false) },
		func(j *Job) { j.EnvironmentVariables = map[string]string{"A": "1"} },
		func(j *Job) { j.Disabled = true },
		func(j *Job) { j.IdleExitTimeout = time.Second },
		func(j *Job) { j.StartCalendarInterval = []CalendarInterval{{}} },
	}
	seen := map[string]int{ja.Fingerprint(): -1}
	for i, change := range changes {
		j, _ := Parse("a.plist", []byte(a))
		change(j)
		f := j.Fingerprint()
		if prev, dup := seen[f]; dup {
			t.Errorf("change %d has the fingerprint of %d", i, prev)
		}
		seen[f] = i
		if j.Equal(ja) {
			t.Errorf("change %d: still Equal", i)
		}
	}
	var nilJob *Job
	if !nilJob.Equal(nil) || nilJob.Equal(ja) || ja.Equal(nil) {
		t.Error("Equal with nil")
	}
}

func TestToDictionaryRoundTrip(t *testing.T) {
	full := fullJob()
	for _, format := range []xpc.PlistFormat{xpc.PlistXML, xpc.PlistBinary} {
		data, err := xpc.ToPlist(full.ToDictionary(), format)
		if err != nil {
			t.Fatal(err)
		}
		j, err := Parse(full.Path, data)
		if err != nil {
			t.Fatalf("%v: %v\n%s", format, err, data)
		}
		if len(j.Warnings) != 0 {
			t.Errorf("%v: warnings %v", format, j.Warnings)
		}
		j.Warnings = full.Warnings
		if !reflect.DeepEqual(j, full) {
			t.Errorf("%v: round trip:\n got %+v\nwant %+v", format, j, full)
		}
	}
	// Defaults are written out, false and empty values are not.
	j, _ := Parse(testFile, []byte(doc(minimal+`<key>RunAtLoad</key><false/><key>WatchPaths</key><array/>
<key>EnvironmentVariables</key><dict/><key>StartCalendarInterval</key><array/><key>KeepAlive</key><dict/>`)))
	if want := (&Job{Path: testFile, Label: "com.example.test", Program: "/usr/bin/true",
		ThrottleInterval: DefaultThrottleInterval, ExitTimeOut: DefaultExitTimeOut, ProcessType: DefaultProcessType}); !reflect.DeepEqual(j, want) {
		t.Errorf("empty values are not absent values:\n got %+v\nwant %+v", j, want)
	}
	d := j.ToDictionary()
	if got := strings.Join(d.Keys(), " "); got != "ExitTimeOut Label ProcessType Program ThrottleInterval" {
		t.Errorf("keys %s", got)
	}
}

func TestValidate(t *testing.T) {
	j := &Job{Path: "code", Label: "com.example.code", Program: "/bin/true", ThrottleInterval: time.Second}
	if err := j.Validate(); err != nil {
		t.Errorf("valid job: %v", err)
	}
	if err := fullJob().Validate(); err != nil {
		t.Errorf("full job: %v", err)
	}
	bad := &Job{
		Path:             "code",
		Label:            "a/b",
		ProgramArguments: []string{"helper"},
		ExitTimeOut:      1500 * time.Millisecond,
		ProcessType:      "Fast",
		MachServices:     map[string]MachService{"bad name": {}},
		Umask:            ptr(01000),
	}
	err := bad.Validate()
	var keys []string
	for _, e := range Errors(err) {
		keys = append(keys, e.Key)
		if e.File != "code" {
			t.Errorf("File %q", e.File)
		}
	}
	want := []string{"ExitTimeOut", "Label", `MachServices."bad name"`, "ProcessType", "ProgramArguments[0]", "Umask"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %q, want %q\n%v", keys, want, err)
	}
	// A label holding NUL can come only from code.
	if err := (&Job{Label: "a\x00b", Program: "/bin/true"}).Validate(); !errors.Is(err, ErrValueNotAllowed) {
		t.Errorf("NUL: %v", err)
	}
}

func TestFromDictionary(t *testing.T) {
	d := xpc.Dict("Label", "com.example.msg", "ProgramArguments", []string{"/bin/echo", "hi"},
		"StartInterval", uint64(30), "KeepAlive", true)
	j, err := FromDictionary("", d)
	if err != nil {
		t.Fatal(err)
	}
	if j.StartInterval != 30*time.Second || !j.KeepAlive.Always || j.Path != "" {
		t.Errorf("%+v", j)
	}
	d.Set("RunAtLoad", xpc.UUID{})
	_, err = FromDictionary("", d)
	if err == nil || err.Error() != "RunAtLoad: want bool, have uuid" {
		t.Errorf("uuid: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "com.example.test.plist")
	if err := os.WriteFile(good, []byte(doc(minimal)), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := Load(good)
	if err != nil || j.Path != good || j.Label != "com.example.test" {
		t.Errorf("Load: %+v, %v", j, err)
	}
	link := filepath.Join(dir, "link.plist")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if j, err := Load(link); err != nil || j.Path != link {
		t.Errorf("symlink: %v", err)
	}

	_, err = Load(filepath.Join(dir, "missing.plist"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	} else if want := filepath.Join(dir, "missing.plist") + ": open: no such file or directory"; err.Error() != want {
		t.Errorf("missing: %q, want %q", err, want)
	}

	if _, err := Load(dir); !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), "a directory") {
		t.Errorf("directory: %v", err)
	}

	fifo := filepath.Join(dir, "fifo.plist")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("fifo: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}

	big := filepath.Join(dir, "big.plist")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrBadFile) {
		t.Errorf("big: %v", err)
	}
	if _, err := Load("/dev/null"); !errors.Is(err, ErrBadFile) {
		t.Errorf("/dev/null: %v", err)
	}
}

func TestCheckNames(t *testing.T) {
	for _, s := range []string{"com.example.helper", "ABCDE12345.com.example.helper", "a_b-c.9"} {
		if err := CheckServiceName(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
		if err := CheckLabel(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "com example", "com/example", "com.example@1", strings.Repeat("a", 128), "é"} {
		if err := CheckServiceName(s); !errors.Is(err, ErrValueNotAllowed) {
			t.Errorf("service %q: %v", s, err)
		}
	}
	if err := CheckServiceName(strings.Repeat("a", 127)); err != nil {
		t.Error(err)
	}
	for _, s := range []string{"", "a/b", "a b", ".", "..", "a\u200bb", "a\x00b", "\xff"} {
		if err := CheckLabel(s); !errors.Is(err, ErrValueNotAllowed) {
			t.Errorf("label %q: %v", s, err)
		}
	}
	if err := CheckLabel("com.example.ünïcode"); err != nil {
		t.Error(err)
	}
}

// fuzzSeeds are the plists of the tests above.
func fuzzSeeds(f *testing.F) [][]byte {
	full, err := os.ReadFile("testdata/com.example.full.plist")
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{full, []byte(doc(minimal)), []byte(`<plist version="1.0"><array/></plist>`)}
	obj, _, err := xpc.FromPlist(full)
	if err != nil {
		f.Fatal(err)
	}
	bin, err := xpc.ToPlist(obj, xpc.PlistBinary)
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, bin)
	for _, tt := range validationTests {
		seeds = append(seeds, []byte(doc(tt.entries)))
	}
	for _, e := range []string{
		`<key>KeepAlive</key><true/>`,
		`<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/><key>NetworkState</key><true/></dict>`,
		`<key>StartCalendarInterval</key><dict><key>Day</key><integer>29</integer><key>Month</key><integer>2</integer></dict>`,
		`<key>Umask</key><string>022</string><key>Sockets</key><dict/><key>RunAtload</key><true/>`,
	} {
		seeds = append(seeds, []byte(doc(minimal+e)))
	}
	return seeds
}

// FuzzParse checks that Parse never panics, that every error is a set of
// *Error of a known kind naming the file, and that an accepted job
// validates again, round-trips through its canonical form, and has
// calendar intervals that fire.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	kinds := []error{ErrBadFile, ErrNotJob, ErrMissingKey, ErrBadType, ErrValueNotAllowed}
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Parse("fuzz.plist", data)
		if err != nil {
			if j != nil {
				t.Fatal("a job and an error")
			}
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("no *Error in %v", err)
			}
			for _, e := range errs {
				if e.File != "fuzz.plist" || e.Reason == "" {
					t.Fatalf("bad error %#v", e)
				}
				known := false
				for _, k := range kinds {
					known = known || errors.Is(e, k)
				}
				if !known {
					t.Fatalf("unknown kind: %v", e)
				}
			}
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("accepted job does not validate: %v", err)
		}
		bin, err := xpc.ToPlist(j.ToDictionary(), xpc.PlistBinary)
		if err != nil {
			t.Fatalf("ToPlist: %v", err)
		}
		j2, err := Parse("fuzz.plist", bin)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v", err)
		}
		if !j2.Equal(j) || j2.Fingerprint() != j.Fingerprint() {
			t.Fatalf("round trip changed the job:\n%s\n%s", xpc.Format(j.ToDictionary()), xpc.Format(j2.ToDictionary()))
		}
		if len(j2.Warnings) != 0 && !onlyZeroWarnings(j2.Warnings) {
			t.Fatalf("canonical form has warnings: %v", j2.Warnings)
		}
		j2.Warnings = j.Warnings
		if !reflect.DeepEqual(j, j2) {
			t.Fatalf("round trip changed the job:\n%+v\n%+v", j, j2)
		}
		for _, c := range j.StartCalendarInterval {
			next := c.Next(now)
			if next.IsZero() || !next.After(now) {
				t.Fatalf("%v.Next(%v) = %v", c, now, next)
			}
		}
	})
}

// onlyZeroWarnings reports whether ws are only the warnings a canonical
// form can carry: ExitTimeOut 0, StartInterval 0 is never written.
func onlyZeroWarnings(ws []Warning) bool {
	for _, w := range ws {
		if w.Key != "ExitTimeOut" {
			return false
		}
	}
	return true
}
