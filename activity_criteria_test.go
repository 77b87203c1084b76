package xpc

import (
	"errors"
	"testing"
	"time"
)

func TestActivityCriteria(t *testing.T) {
	c := ActivityCriteria{Interval: 4 * time.Second, RequireNetwork: true, DiskIntensive: true}
	back, unknown, err := ParseActivityCriteria(c.Dictionary())
	if err != nil || len(unknown) != 0 || back != c {
		t.Fatalf("round trip: %+v %v %v", back, unknown, err)
	}
	n := c.Normalized()
	if !n.Repeating || n.Delay != 4*time.Second || n.GracePeriod != 2*time.Second || n.Priority != PriorityMaintenance {
		t.Errorf("normalized: %+v", n)
	}
	// An odd interval's grace period is whole seconds, so that the
	// criteria in force read back as they are.
	odd := ActivityCriteria{Interval: 3 * time.Second}.Normalized()
	if odd.GracePeriod != time.Second || odd.Check() != nil {
		t.Errorf("odd interval: %+v %v", odd, odd.Check())
	}
	d := c.Dictionary()
	d.Set(CriteriaDelay, Uint64(3))
	d.Set("Other", Bool(true))
	got, unknown, err := ParseActivityCriteria(d)
	if err != nil || got.Delay != 3*time.Second || len(unknown) != 1 || unknown[0] != "Other" {
		t.Errorf("uint64 delay, unknown key: %+v %v %v", got, unknown, err)
	}
	for name, v := range map[string]Object{
		CriteriaInterval:       Int64(-1),
		CriteriaDelay:          String("5"),
		CriteriaGracePeriod:    Uint64(1 << 63),
		CriteriaPriority:       String("Urgent"),
		CriteriaAllowBattery:   Int64(1),
		CriteriaRequireNetwork: String("yes"),
	} {
		d := &Dictionary{}
		d.Set(name, v)
		if _, _, err := ParseActivityCriteria(d); !errors.Is(err, ErrBadCriteria) {
			t.Errorf("%s = %v: %v", name, v, err)
		}
	}
	if err := (ActivityCriteria{Repeating: true}).Check(); !errors.Is(err, ErrBadCriteria) {
		t.Errorf("repeating without interval: %v", err)
	}
	if err := (ActivityCriteria{Delay: 1500 * time.Millisecond}).Check(); !errors.Is(err, ErrBadCriteria) {
		t.Errorf("fractional delay: %v", err)
	}
}
