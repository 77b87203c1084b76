package criteria

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"syscall"
)

// readPressure answers CPUPressure, MemoryPressure or IOPressure from
// /proc/pressure/RESOURCE: true when "some avg10" is over threshold
// (percent).
func (l *Linux) readPressure(resource string, threshold float64) Fact {
	f := Fact{Source: "/proc/pressure/" + resource}
	text, err := readAttr(l.path("proc/pressure/" + resource))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.Why = "no PSI: " + f.Source + " is absent (a kernel without CONFIG_PSI)"
		return f
	case errors.Is(err, syscall.EOPNOTSUPP):
		f.Why = "no PSI: disabled (psi=0 on the kernel's command line)"
		return f
	case err != nil:
		f.Why = errText(err)
		return f
	}
	avg, err := someAvg10(text)
	if err != nil {
		f.Why = err.Error()
		return f
	}
	f.Known, f.Value = true, avg > threshold
	relation := "at or under"
	if f.Value {
		relation = "over"
	}
	f.Why = fmt.Sprintf("some avg10 %.2f%% %s %g%%", avg, relation, threshold)
	return f
}

// someAvg10 reads avg10 of the "some" line of a PSI file:
//
//	some avg10=1.53 avg60=0.87 avg300=0.22 total=1234567
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
func someAvg10(text string) (float64, error) {
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "some" {
			continue
		}
		for _, kv := range fields[1:] {
			v, ok := strings.CutPrefix(kv, "avg10=")
			if !ok {
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || x < 0 || x > 100 {
				return 0, fmt.Errorf("malformed: some avg10=%.20q", v)
			}
			return x, nil
		}
		return 0, errors.New(`malformed: no avg10 on the "some" line`)
	}
	return 0, errors.New(`malformed: no "some" line`)
}
