package criteria

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	powerSupplyDir = "sys/class/power_supply"
	sourcePower    = "/sys/class/power_supply"
	maxAttrBytes   = 256 // a sysfs attribute read; longer ones are malformed
	maxSupplies    = 64  // power_supply entries looked at
)

// readAttr reads a small sysfs or procfs file, trimmed, refusing one over
// maxAttrBytes.
func readAttr(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, maxAttrBytes+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	if n > maxAttrBytes {
		return "", fmt.Errorf("%s: longer than %d bytes", filepath.Base(path), maxAttrBytes)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// supply is what one power_supply entry says.
type supply struct {
	name, kind, scope, status, online string
	err                               error // reading it failed
}

// readSupplies reads the entries of /sys/class/power_supply, at most
// maxSupplies, in name order.
func readSupplies(dir string) ([]supply, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if len(entries) > maxSupplies {
		entries = entries[:maxSupplies]
	}
	var out []supply
	for _, e := range entries {
		s := supply{name: e.Name()}
		p := filepath.Join(dir, s.name)
		if s.kind, s.err = readAttr(filepath.Join(p, "type")); s.err == nil {
			switch s.kind {
			case "Battery":
				// scope "Device": a mouse's or a headset's battery, not the machine's.
				s.scope, _ = readAttr(filepath.Join(p, "scope"))
				s.status, s.err = readAttr(filepath.Join(p, "status"))
				if s.err == nil && s.status == "" {
					s.err = errors.New("status: empty")
				}
			case "Mains", "USB":
				s.online, s.err = readAttr(filepath.Join(p, "online"))
			case "":
				s.err = errors.New("type: empty")
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// readPower answers OnBattery: true when a battery of the machine
// discharges and no mains or USB supply is online; a machine with no
// battery is on mains power.
func (l *Linux) readPower() Fact {
	f := Fact{Source: sourcePower}
	ss, err := readSupplies(l.path(powerSupplyDir))
	if errors.Is(err, fs.ErrNotExist) {
		f.Known, f.Why = true, "no battery (no "+sourcePower+")"
		return f
	}
	if err != nil {
		f.Why = err.Error()
		return f
	}
	var online, discharging, other string
	var bad []string
	batteries := 0
	for _, s := range ss {
		switch {
		case s.err != nil:
			bad = append(bad, s.name+": "+errText(s.err))
		case (s.kind == "Mains" || s.kind == "USB") && s.online == "1":
			online = s.name
		case s.kind == "Battery" && s.scope != "Device":
			batteries++
			if s.status == "Discharging" && discharging == "" {
				discharging = s.name
			} else if other == "" {
				other = s.name + " " + strings.ToLower(s.status)
			}
		}
	}
	switch {
	case online != "":
		f.Known, f.Why = true, online+" online"
	case discharging != "":
		f.Known, f.Value, f.Why = true, true, discharging+" discharging"
	case other != "":
		f.Known, f.Why = true, other
	case len(bad) > 0:
		f.Why = strings.Join(bad, "; ")
	case batteries == 0:
		f.Known, f.Why = true, "no battery"
	}
	return f
}

// errText is err's text without the path a *fs.PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return filepath.Base(pe.Path) + ": " + pe.Err.Error()
	}
	return err.Error()
}
