package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// list shows the service names each job serves, a row bounded however
// many it has, and marks a job whose plist was deleted.
func TestRenderListServices(t *testing.T) {
	names := func(n int) xpc.Array {
		a := xpc.Array{}
		for i := range n {
			a = append(a, xpc.String(fmt.Sprintf("org.example.service%03d", i)))
		}
		return a
	}
	job := func(label string, kv ...any) *xpc.Dictionary {
		return xpc.Dict(append([]any{bootstrap.KeyLabel, label, bootstrap.KeyDomain, "user/501", bootstrap.KeyState, "running", bootstrap.KeyPID, 42}, kv...)...)
	}
	reply := xpc.Dict(bootstrap.KeyJobs, xpc.Array{
		job("a.two", bootstrap.KeyMachServices, xpc.Array{xpc.String("org.a.one"), xpc.String("org.a.two")}),
		job("b.many", bootstrap.KeyMachServices, names(1000)),
		job("c.gone", bootstrap.KeyMachServices, names(1), bootstrap.KeyPlistDeleted, true),
	})
	var b strings.Builder
	renderList(&b, reply)
	want := `PID  STATE                    RUNS  LAST EXIT  LABEL            SERVICES
42   running                  0     -          user/501/a.two   org.a.one,org.a.two
42   running                  0     -          user/501/b.many  org.example.service000,org.example.service001,+998
42   running (plist deleted)  0     -          user/501/c.gone  org.example.service000
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	// Names of every length up to past the bound, in any number: the
	// column stays within it (the first name whole aside) and counts
	// those it leaves out.
	for size := 1; size <= maxServicesColumn+2; size++ {
		for n := range 14 {
			a := xpc.Array{}
			for i := range n {
				a = append(a, xpc.String(fmt.Sprintf("%0*d", size, i)))
			}
			col := servicesColumn(job("x", bootstrap.KeyMachServices, a))
			if len(col) > max(maxServicesColumn, size+len(",+99")) {
				t.Errorf("%d names of %d bytes: %d bytes: %s", n, size, len(col), col)
			}
			shown := 0
			if n > 0 {
				shown = strings.Count(strings.Split(col, ",+")[0], ",") + 1
			}
			if shown < n && !strings.HasSuffix(col, fmt.Sprintf(",+%d", n-shown)) || n == 0 && col != "-" {
				t.Errorf("%d names of %d bytes: %s does not count those left out", n, size, col)
			}
		}
	}
}
