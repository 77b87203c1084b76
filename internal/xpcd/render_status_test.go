package xpcd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/goxpc/xpc/launchd"
)

// instanceKeys are print's keys of a running process.
var instanceKeys = []string{"pid", keyStartedAt, "uid", "gid", "user", "rss_bytes", "threads", "cpu_user_ms", "cpu_system_ms"}

// print shows, as systemctl status does, the running instance's
// arguments, environment, user, standard files, memory and CPU time; a
// job that does not run shows its definition's keys and none of the
// instance's.
func TestPrintStatus(t *testing.T) {
	h := newHarness(t)
	out := filepath.Join(h.dir, "out.log")
	h.writePlist(testJob{label: "test.status", names: []string{"test.status.svc"},
		env:   map[string]string{"STATUS_GREETING": "hello world"},
		extra: map[string]any{"StandardOutPath": out, "WorkingDirectory": h.dir}})
	h.writePlist(testJob{label: "test.status.idle", names: []string{"test.status.idle.svc"}})
	h.start()
	c := h.mustLookup("test.status.svc")
	pid := ping(t, c)

	d := h.print("test.status")
	argv, _ := d.Array(keyArguments)
	if want := (xpc.Array{xpc.String(h.exe), xpc.String("-test.run=^TestHelperProcess$")}); !xpc.Equal(argv, want) {
		t.Errorf("arguments = %v, want %v", argv, want)
	}
	env, _ := d.Get(keyEnvironment).(*xpc.Dictionary)
	if s, _ := env.String("STATUS_GREETING"); s != "hello world" {
		t.Errorf("environment = %v, want STATUS_GREETING's value", xpc.Format(d.Get(keyEnvironment)))
	}
	for k, want := range map[string]string{"stdin": os.DevNull, "stdout": out, "stderr": xpcdLogOutput, "working_directory": h.dir} {
		if got := strOf(d, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if intOf(d, "pid") != pid || intOf(d, "uid") != os.Getuid() || intOf(d, "gid") != os.Getgid() {
		t.Errorf("pid, uid, gid = %d, %d, %d; want %d, %d, %d", intOf(d, "pid"), intOf(d, "uid"), intOf(d, "gid"), pid, os.Getuid(), os.Getgid())
	}
	if intOf(d, "rss_bytes") <= 0 || intOf(d, "threads") <= 0 {
		t.Errorf("rss_bytes %d, threads %d: want > 0", intOf(d, "rss_bytes"), intOf(d, "threads"))
	}
	for _, k := range instanceKeys {
		if d.Get(k) == nil {
			t.Errorf("no %s in a running job's print: %s", k, xpc.Format(d))
		}
	}
	if at, _ := d.Get(keyStartedAt).(xpc.Date); time.Since(at.Time()) > testTimeout || time.Since(at.Time()) < 0 {
		t.Errorf("started_at %v", at.Time())
	}

	// Not running: the definition, none of the instance.
	idle := h.print("test.status.idle")
	if a, _ := idle.Array(keyArguments); len(a) != 2 || strOf(idle, "stdout") != xpcdLogOutput {
		t.Errorf("a waiting job's definition keys: %s", xpc.Format(idle))
	}
	for _, k := range instanceKeys {
		if idle.Get(k) != nil {
			t.Errorf("a waiting job shows %s: %s", k, xpc.Format(idle))
		}
	}
	// Nor once its instance has gone.
	h.mustAdmin(bootstrap.OpKill, bootstrap.KeyTarget, h.target("test.status"), bootstrap.KeySignal, 9)
	waitFor(t, "test.status to exit", func() bool { return h.print("test.status").Get("last_exit") != nil })
	gone := h.print("test.status")
	for _, k := range instanceKeys {
		if gone.Get(k) != nil {
			t.Errorf("an exited job shows %s: %s", k, xpc.Format(gone))
		}
	}
}

// A system job's environment values are root's: another user sees the
// names alone; the user of a user domain sees their own values.
func TestPrintStatusEnvironmentValues(t *testing.T) {
	def := &launchd.Job{Label: "x", Program: "/bin/true", EnvironmentVariables: map[string]string{"TOKEN": "secret", "A": "1"}}
	for _, c := range []struct {
		dom    *domain
		uid    uint32
		values bool
	}{
		{&domain{name: DomainSystem}, 0, true},
		{&domain{name: DomainSystem}, 1000, false},
		{&domain{name: UserDomain(1000), owner: 1000}, 1000, true},
		{&domain{name: UserDomain(1000), owner: 1000}, 0, true},
	} {
		d := xpc.NewDictionary(0)
		if q := setStatusKeys(d, &job{dom: c.dom, def: def}, c.uid); q != nil {
			t.Errorf("a job without an instance gave a process to read: %v", q)
		}
		names, _ := d.Array(keyEnvNames)
		env, _ := d.Get(keyEnvironment).(*xpc.Dictionary)
		switch {
		case c.values && (env == nil || names != nil || env.Get("TOKEN") != xpc.String("secret")):
			t.Errorf("%s read by uid %d: %s, want the values", c.dom.name, c.uid, xpc.Format(d))
		case !c.values && (env != nil || !xpc.Equal(names, xpc.Array{xpc.String("A"), xpc.String("TOKEN")})):
			t.Errorf("%s read by uid %d: %s, want the names alone", c.dom.name, c.uid, xpc.Format(d))
		}
	}
}

// The numbers are read only of the instance's own process: a pid whose
// start time is not the instance's (reused) gives none, and neither does
// a pid that has ended.
func TestReadProcNumbersChecksProcess(t *testing.T) {
	self := os.Getpid()
	st, err := startTime(self)
	if err != nil {
		t.Fatal(err)
	}
	n, err := readProcNumbers(&procQuery{pid: self, startTime: st})
	if err != nil || n.rss <= 0 || n.threads <= 0 || n.uid != int64(os.Getuid()) {
		t.Fatalf("this process: %+v, %v", n, err)
	}
	if _, err := readProcNumbers(&procQuery{pid: self, startTime: st + 1}); !errors.Is(err, errProcessChanged) {
		t.Errorf("another start time: %v, want errProcessChanged", err)
	}
	if _, err := readProcNumbers(&procQuery{pid: 1 << 30, startTime: st}); err == nil {
		t.Error("a pid nobody has: no error")
	}
}

func TestParseProcFiles(t *testing.T) {
	var n procNumbers
	stat := "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 7 0 123456 0 0"
	start, err := parseStatNumbers([]byte(stat), &n)
	if err != nil || start != 123456 || n.utime != 2500 || n.stime != 1300 || n.threads != 7 {
		t.Errorf("stat: start %d, %+v, %v", start, n, err)
	}
	if _, err := parseStatNumbers([]byte("42 (a) S 1"), &n); err == nil {
		t.Error("a short stat: no error")
	}
	status := "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nVmRSS:\t   2048 kB\n"
	if err := parseStatusNumbers([]byte(status), &n); err != nil || n.uid != 1000 || n.gid != 100 || n.rss != 2048<<10 {
		t.Errorf("status: %+v, %v", n, err)
	}
	if err := parseStatusNumbers([]byte("Name:\tx\n"), &n); err == nil {
		t.Error("a status without Uid: no error")
	}
	if got := cgroupV2([]byte("4:memory:/x\n0::/user.slice/a.service\n")); got != "/user.slice/a.service" {
		t.Errorf("cgroupV2 = %q", got)
	}
	if got := cgroupV2([]byte("4:memory:/x\n")); got != "" {
		t.Errorf("cgroupV2 of v1 alone = %q", got)
	}
}

// A process that has ended, not yet reaped (its /proc files are still
// there), gives no numbers.
func TestReadProcNumbersEndedProcess(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { cmd.Wait() })
	pid := cmd.Process.Pid
	st, err := startTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child to be a zombie", func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		i := bytes.LastIndexByte(b, ')')
		return i > 0 && bytes.HasPrefix(b[i+1:], []byte(" Z"))
	})
	if n, err := readProcNumbers(&procQuery{pid: pid, startTime: st}); !errors.Is(err, errProcessChanged) {
		t.Errorf("an ended process: %+v, %v; want errProcessChanged", n, err)
	}
}

// The numbers are read as the caller: another user reads them of a
// process of root's as /proc lets them (all of them, without hidepid).
func TestAddProcKeysAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to read as another user")
	}
	st, err := startTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	d := xpc.NewDictionary(0)
	addProcKeys(d, &procQuery{pid: os.Getpid(), startTime: st}, &ident{uid: 65534, gid: 65534})
	if intOf(d, "uid") != 0 || intOf(d, "rss_bytes") <= 0 || d.Get("cpu_user_ms") == nil {
		t.Errorf("read as uid 65534: %s", xpc.Format(d))
	}
	none := xpc.NewDictionary(0)
	addProcKeys(none, nil, nil)
	if none.Len() != 0 {
		t.Errorf("no process: %s", xpc.Format(none))
	}
}
