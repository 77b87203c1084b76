package xpcd

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// TestRequestsWithHostileValues sends every request xpcd knows, and some it
// does not, with each of its keys set to values of every wrong type and to
// out-of-range ones, on one bootstrap connection. Each must be answered on
// that connection, by a reply or by an error that names a reason; the
// connection and xpcd must live on, and the one job xpcd has must be as it
// was.
func TestRequestsWithHostileValues(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writePlist(testJob{label: "test.hostile", names: []string{"test.hostile.svc"}})
	h.start()
	before := h.print("test.hostile")

	ops := []string{"", "no-such-op", bootstrap.OpLookup, bootstrap.OpCheckin, bootstrap.OpAdopt,
		bootstrap.OpTransactions, bootstrap.OpConnect, bootstrap.OpTerminate}
	for op := range adminOps {
		ops = append(ops, op)
	}
	keys := []string{bootstrap.KeyTarget, bootstrap.KeyPath, bootstrap.KeyWait, bootstrap.KeySignal, bootstrap.KeyPID, bootstrap.KeyStatus,
		bootstrap.KeyName, bootstrap.KeyDomain, bootstrap.KeySocket, bootstrap.KeyLabel,
		bootstrap.KeyCount, bootstrap.KeyKind}
	// A well-formed target naming no job, so that ops get past their
	// target check to the key under test, and a valid request changes
	// nothing.
	target := xpc.String(h.target("test.nosuch"))
	values := []xpc.Object{
		xpc.Null{}, xpc.Bool(true), xpc.Int64(-1), xpc.Int64(0), xpc.Int64(math.MaxInt64),
		xpc.Int64(math.MinInt64), xpc.Uint64(math.MaxUint64), xpc.Double(math.NaN()),
		xpc.String(""), xpc.String("../../../../etc/passwd"), xpc.String("/dev/zero"),
		xpc.String(strings.Repeat("a/", 4096)), target,
		xpc.Data{0xff, 0}, xpc.Array{xpc.Int64(1)}, xpc.Dict("target", "system"),
	}
	c := h.dial(nil)
	defer c.Cancel()
	n := 0
	for _, op := range ops {
		for _, key := range keys {
			for _, v := range values {
				for _, withTarget := range []bool{false, true} {
					if withTarget && key == bootstrap.KeyTarget {
						continue
					}
					msg := xpc.Dict(bootstrap.KeyOp, op)
					if withTarget {
						msg.Set(bootstrap.KeyTarget, target)
					}
					msg.Set(key, v)
					r, err := c.SendWithReply(testCtx(t), msg)
					n++
					var re *xpc.RemoteError
					switch {
					case err == nil:
						_ = xpc.CloseAttachments(r)
					case !errors.As(err, &re):
						t.Fatalf("%s with %s = %v: %v; want a reply or an error from xpcd", op, key, xpc.Format(v), err)
					case reasonOf(err) == "":
						t.Errorf("%s with %s = %v: error without a reason: %v", op, key, xpc.Format(v), err)
					}
				}
			}
		}
	}
	// Still there, and the job as it was.
	if _, err := c.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpList)); err != nil {
		t.Fatalf("after %d hostile requests, list: %v", n, err)
	}
	after := h.print("test.hostile")
	for _, k := range []string{"state", "runs", "disabled"} {
		if !xpc.Equal(before.Get(k), after.Get(k)) {
			t.Errorf("%s: %v before, %v after", k, before.Get(k), after.Get(k))
		}
	}
}
