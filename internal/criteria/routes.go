package criteria

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

const (
	sourceRoutes   = "kernel routes"
	maxRouteBytes  = 1 << 20 // of /proc/net/route or ipv6_route read
	maxRouteLine   = 512
	rtfUp          = 0x0001 // RTF_UP
	rtfReject      = 0x0200 // RTF_REJECT
	iffUp          = 0x1    // IFF_UP
	maxIfaceLength = 15     // IFNAMSIZ - 1
	maxReported    = 8      // items a Why lists
)

// defaultRoute is a default route the kernel has.
type defaultRoute struct{ iface string }

// scanRoutes calls line for each line of the file at path after the
// first skip, bounded in bytes and line length.
func scanRoutes(path string, skip int, line func(fields []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxRouteBytes))
	sc.Buffer(make([]byte, 0, maxRouteLine), maxRouteLine)
	n := 0
	for sc.Scan() {
		if n++; n <= skip {
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if err := line(fields); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return nil
}

// ipv4Defaults lists the default routes of /proc/net/route: after a
// header, lines of interface, destination, gateway, flags, references,
// use, metric, mask, MTU, window and IRTT, in hex where numeric:
//
//	eth0  00000000    0102A8C0 0003 0      0   100    00000000 0 0 0
func ipv4Defaults(path string) ([]defaultRoute, error) {
	var out []defaultRoute
	err := scanRoutes(path, 1, func(f []string) error {
		if len(f) < 8 {
			return errors.New("malformed: fewer than 8 fields")
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil {
			return fmt.Errorf("malformed flags %.16q", f[3])
		}
		if f[1] == "00000000" && f[7] == "00000000" && flags&rtfUp != 0 && flags&rtfReject == 0 {
			out = append(out, defaultRoute{f[0]})
		}
		return nil
	})
	return out, err
}

// ipv6Defaults lists the default routes of /proc/net/ipv6_route:
//
//	dest(32 hex) plen src splen nexthop metric refcnt use flags iface
func ipv6Defaults(path string) ([]defaultRoute, error) {
	var out []defaultRoute
	err := scanRoutes(path, 0, func(f []string) error {
		if len(f) < 10 {
			return errors.New("malformed: fewer than 10 fields")
		}
		flags, err := strconv.ParseUint(f[8], 16, 32)
		if err != nil {
			return fmt.Errorf("malformed flags %.16q", f[8])
		}
		if f[0] == strings.Repeat("0", 32) && f[1] == "00" && flags&rtfUp != 0 && flags&rtfReject == 0 {
			out = append(out, defaultRoute{f[9]})
		}
		return nil
	})
	return out, err
}

// ifaceUp says whether the interface is up: operstate "up", or "unknown"
// (drivers that do not report it: tun, some virtual ones) with IFF_UP.
func (l *Linux) ifaceUp(name string) (bool, string) {
	if name == "" || len(name) > maxIfaceLength || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return false, fmt.Sprintf("bad interface name %.20q", name)
	}
	dir := l.path("sys/class/net/" + name)
	state, err := readAttr(dir + "/operstate")
	if err != nil {
		return false, name + ": " + errText(err)
	}
	if state == "up" {
		return true, name + " up"
	}
	if state == "unknown" {
		text, err := readAttr(dir + "/flags")
		if err != nil {
			return false, name + ": " + errText(err)
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(text, "0x"), 16, 32)
		if err != nil {
			return false, fmt.Sprintf("%s: malformed flags %.16q", name, text)
		}
		if flags&iffUp != 0 {
			return true, name + " up"
		}
	}
	return false, name + " " + state
}

// readRoutes answers Network from the kernel's routes: true when a
// default route (IPv4 or IPv6) goes through an interface that is up,
// other than loopback.
func (l *Linux) readRoutes() Fact {
	f := Fact{Source: sourceRoutes}
	var routes []defaultRoute
	var bad []string
	for _, t := range []struct {
		file string
		read func(string) ([]defaultRoute, error)
	}{{"proc/net/route", ipv4Defaults}, {"proc/net/ipv6_route", ipv6Defaults}} {
		rs, err := t.read(l.path(t.file))
		switch {
		case errors.Is(err, fs.ErrNotExist) && t.file == "proc/net/ipv6_route":
			// A kernel without IPv6: no routes of it.
		case err != nil:
			bad = append(bad, "/"+t.file+": "+errText(err))
		default:
			routes = append(routes, rs...)
		}
	}
	var down []string
	for _, r := range routes {
		if r.iface == "lo" {
			continue
		}
		up, why := l.ifaceUp(r.iface)
		if up {
			f.Known, f.Value, f.Why = true, true, "default route via "+why
			return f
		}
		if len(down) < maxReported {
			down = append(down, why)
		}
	}
	switch {
	case len(bad) > 0:
		f.Why = strings.Join(append(bad, down...), "; ")
	case len(down) > 0:
		f.Known, f.Why = true, "no default route on an interface that is up ("+strings.Join(down, ", ")+")"
	default:
		f.Known, f.Why = true, "no default route"
	}
	return f
}
