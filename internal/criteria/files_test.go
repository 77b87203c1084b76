package criteria

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes files (path under the root -> content) into a new root
// directory. A content of "<dir>" makes a directory.
func tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if content == "<dir>" {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// noBus is a system bus address where nothing listens.
func noBus(t testing.TB) string {
	return "unix:path=" + filepath.Join(t.TempDir(), "no-bus")
}

// newLinux returns Linux on root with no bus, closed at the test's end.
func newLinux(t *testing.T, cfg Config) *Linux {
	t.Helper()
	if cfg.SystemBus == "" {
		cfg.SystemBus = noBus(t)
	}
	l, err := NewLinux(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// factCase is a fake tree and what a condition read on it answers.
type factCase struct {
	name  string
	files map[string]string
	known bool
	value bool
	why   string // a part of Why
}

func checkFacts(t *testing.T, c Condition, cases []factCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLinux(t, Config{Root: tree(t, tc.files)})
			f := l.Read(context.Background(), c, 1000)
			if f.Known != tc.known || f.Known && f.Value != tc.value || !strings.Contains(f.Why, tc.why) || f.Why == "" {
				t.Errorf("Read(%s) = %+v, want known %v value %v why containing %q", c, f, tc.known, tc.value, tc.why)
			}
		})
	}
}

func TestOnBattery(t *testing.T) {
	const ps = "sys/class/power_supply/"
	long := strings.Repeat("x", maxAttrBytes+1)
	checkFacts(t, OnBattery, []factCase{
		{"no power_supply directory", map[string]string{"sys/class": "<dir>"}, true, false, "no battery"},
		{"no entries", map[string]string{ps: "<dir>"}, true, false, "no battery"},
		{"mains only", map[string]string{ps + "AC/type": "Mains\n", ps + "AC/online": "1\n"}, true, false, "AC online"},
		{"discharging", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Discharging\n", ps + "AC/type": "Mains\n", ps + "AC/online": "0\n"}, true, true, "BAT0 discharging"},
		{"discharging, no mains entry", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Discharging\n"}, true, true, "BAT0 discharging"},
		{"discharging but mains online", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Discharging\n", ps + "AC/type": "Mains\n", ps + "AC/online": "1\n"}, true, false, "AC online"},
		{"discharging but USB online", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Discharging\n", ps + "ucsi/type": "USB\n", ps + "ucsi/online": "1\n"}, true, false, "ucsi online"},
		{"charging", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Charging\n"}, true, false, "BAT0 charging"},
		{"full", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Full\n"}, true, false, "BAT0 full"},
		{"a mouse's battery", map[string]string{ps + "hid-mouse/type": "Battery\n", ps + "hid-mouse/scope": "Device\n", ps + "hid-mouse/status": "Discharging\n"}, true, false, "no battery"},
		{"second battery discharging", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Full\n", ps + "BAT1/type": "Battery\n", ps + "BAT1/status": "Discharging\n"}, true, true, "BAT1 discharging"},
		{"no status", map[string]string{ps + "BAT0/type": "Battery\n"}, false, false, "BAT0: status: no such file"},
		{"empty status", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": ""}, false, false, "BAT0: status: empty"},
		{"empty type", map[string]string{ps + "BAT0/type": ""}, false, false, "BAT0: type: empty"},
		{"no type", map[string]string{ps + "BAT0/status": "Discharging"}, false, false, "BAT0: type: no such file"},
		{"long status", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": long}, false, false, "longer than 256 bytes"},
		{"a directory as status", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "<dir>"}, false, false, "BAT0: status: is a directory"},
		{"unreadable entry beside a charging battery", map[string]string{ps + "BAT0/type": "Battery\n", ps + "BAT0/status": "Charging\n", ps + "X/status": "?"}, true, false, "BAT0 charging"},
		{"unknown kinds", map[string]string{ps + "ups/type": "UPS\n", ps + "w/type": "Wireless\n"}, true, false, "no battery"},
	})
}

func TestPressure(t *testing.T) {
	const psi = "some avg10=%s avg60=0.00 avg300=0.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	file := func(avg string) string { return strings.Replace(psi, "%s", avg, 1) }
	for _, r := range []struct {
		c        Condition
		resource string
		def      string
	}{{CPUPressure, "cpu", "40%"}, {MemoryPressure, "memory", "10%"}, {IOPressure, "io", "30%"}} {
		t.Run(r.resource, func(t *testing.T) {
			p := "proc/pressure/" + r.resource
			checkFacts(t, r.c, []factCase{
				{"no PSI", map[string]string{"proc": "<dir>"}, false, false, "no PSI: /proc/pressure/" + r.resource + " is absent"},
				{"calm", map[string]string{p: file("0.00")}, true, false, "some avg10 0.00% at or under " + r.def},
				{"pressed", map[string]string{p: file("99.50")}, true, true, "some avg10 99.50% over " + r.def},
				{"cpu's file has no full line", map[string]string{p: "some avg10=100.00 avg60=1 avg300=1 total=1\n"}, true, true, "over"},
				{"empty", map[string]string{p: ""}, false, false, `malformed: no "some" line`},
				{"no avg10", map[string]string{p: "some avg60=1.00\n"}, false, false, "malformed: no avg10"},
				{"not a number", map[string]string{p: file("abc")}, false, false, `malformed: some avg10="abc"`},
				{"NaN", map[string]string{p: file("NaN")}, false, false, "malformed"},
				{"over 100", map[string]string{p: file("100.01")}, false, false, "malformed"},
				{"negative", map[string]string{p: file("-1")}, false, false, "malformed"},
				{"huge", map[string]string{p: strings.Repeat("some ", 100)}, false, false, "longer than"},
				{"binary", map[string]string{p: "\x00\xff\n"}, false, false, "malformed"},
			})
		})
	}
}

func TestPressureThresholds(t *testing.T) {
	root := tree(t, map[string]string{"proc/pressure/memory": "some avg10=5.00 avg60=0 avg300=0 total=0\n"})
	for _, tc := range []struct {
		threshold float64
		want      bool
	}{{4.99, true}, {5, false}, {0, false}, {100, false}} {
		l := newLinux(t, Config{Root: root, MemoryPressure: tc.threshold})
		if f := l.Read(context.Background(), MemoryPressure, 0); !f.Known || f.Value != tc.want {
			t.Errorf("threshold %v: %+v, want %v", tc.threshold, f, tc.want)
		}
	}
	for _, bad := range []Config{{CPUPressure: -1}, {IOPressure: 101}, {MemoryPressure: math.NaN()}, {Retry: -1}} {
		if _, err := NewLinux(context.Background(), bad); err == nil || !errors.Is(err, ErrBadConfig) {
			t.Errorf("NewLinux(%+v) = %v, want ErrBadConfig", bad, err)
		}
	}
}

func TestNetworkRoutes(t *testing.T) {
	const (
		head   = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		v4def  = "eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
		v4net  = "eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
		v4rej  = "eth0\t00000000\t00000000\t0201\t0\t0\t100\t00000000\t0\t0\t0\n"
		v4lo   = "lo\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
		zero   = "00000000000000000000000000000000"
		v6def  = zero + " 00 " + zero + " 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 wlan0\n"
		v6lo   = zero + " 00 " + zero + " 00 " + zero + " ffffffff 00000001 00000000 00200200 lo\n"
		v6net  = "20010db8000000000000000000000000 40 " + zero + " 00 " + zero + " 00000100 00000001 00000000 00000001 wlan0\n"
		route  = "proc/net/route"
		route6 = "proc/net/ipv6_route"
		eth0   = "sys/class/net/eth0/operstate"
		wlan0  = "sys/class/net/wlan0/operstate"
	)
	checkFacts(t, Network, []factCase{
		{"IPv4 default route, up", map[string]string{route: head + v4net + v4def, eth0: "up\n"}, true, true, "default route via eth0 up"},
		{"IPv4 default route, down", map[string]string{route: head + v4def, eth0: "down\n"}, true, false, "no default route on an interface that is up (eth0 down)"},
		{"IPv4 default route, dormant", map[string]string{route: head + v4def, eth0: "dormant\n"}, true, false, "eth0 dormant"},
		{"operstate unknown, IFF_UP", map[string]string{route: head + v4def, eth0: "unknown\n", "sys/class/net/eth0/flags": "0x1003\n"}, true, true, "eth0 up"},
		{"operstate unknown, not IFF_UP", map[string]string{route: head + v4def, eth0: "unknown\n", "sys/class/net/eth0/flags": "0x1002\n"}, true, false, "eth0 unknown"},
		{"operstate unknown, bad flags", map[string]string{route: head + v4def, eth0: "unknown\n", "sys/class/net/eth0/flags": "zz\n"}, true, false, `eth0: malformed flags "zz"`},
		{"no operstate", map[string]string{route: head + v4def}, true, false, "eth0: operstate: no such file"},
		{"no default route", map[string]string{route: head + v4net, route6: v6net}, true, false, "no default route"},
		{"reject route", map[string]string{route: head + v4rej, eth0: "up\n"}, true, false, "no default route"},
		{"loopback only", map[string]string{route: head + v4lo, route6: v6lo, "sys/class/net/lo/operstate": "unknown\n", "sys/class/net/lo/flags": "0x9\n"}, true, false, "no default route"},
		{"IPv6 default route", map[string]string{route: head, route6: v6lo + v6def, wlan0: "up\n"}, true, true, "default route via wlan0 up"},
		{"no IPv6", map[string]string{route: head + v4def, eth0: "up\n"}, true, true, "eth0 up"},
		{"no /proc/net/route", map[string]string{"proc": "<dir>"}, false, false, "/proc/net/route: route: no such file"},
		{"short line", map[string]string{route: head + "eth0 00000000\n"}, false, false, "/proc/net/route: line 2: malformed: fewer than 8 fields"},
		{"bad flags", map[string]string{route: head + "eth0\t00000000\t0\tXYZ\t0\t0\t0\t00000000\n"}, false, false, `line 2: malformed flags "XYZ"`},
		{"bad IPv6 line", map[string]string{route: head, route6: "garbage\n"}, false, false, "/proc/net/ipv6_route: line 1: malformed"},
		{"bad interface name", map[string]string{route: head + "..\t00000000\t0\t0003\t0\t0\t0\t00000000\n"}, true, false, `bad interface name ".."`},
		{"long line", map[string]string{route: head + strings.Repeat("x", 1000) + "\n"}, false, false, "token too long"},
		{"binary", map[string]string{route: "\x00\xff\xfe\n\x00 \x01 \x02 \x03 \x04 \x05 \x06 \x07\n"}, false, false, "malformed flags"},
	})
}

func TestUnknownCondition(t *testing.T) {
	l := newLinux(t, Config{Root: tree(t, nil)})
	if f := l.Read(context.Background(), "moon-phase", 0); f.Known || f.Why != `no source for condition "moon-phase"` {
		t.Errorf("Read of an unknown condition = %+v", f)
	}
}

func TestInexpensiveNetworkWithoutBus(t *testing.T) {
	l := newLinux(t, Config{Root: tree(t, nil)})
	f := l.Read(context.Background(), InexpensiveNetwork, 0)
	if f.Known || !strings.Contains(f.Why, "no system bus") || !strings.Contains(f.Why, "the kernel cannot tell whether a network is metered") {
		t.Errorf("InexpensiveNetwork without a bus: %+v", f)
	}
}
