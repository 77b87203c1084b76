package xpcd

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
)

// A service's output is bytes, not text: a line holding a NUL byte or
// bytes that are not UTF-8 (binary output, Latin-1), or a long line of
// UTF-8 cut in a character, must not make its log unreadable: OpLog,
// follow and print answer with such bytes shown as U+FFFD, for its user
// and for root alike.
func TestLogOfBytesThatAreNotText(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	long := strings.Repeat("€", 400) // 1200 bytes: cut for print in a character
	h.writePlist(shJob("test.bytes", `printf 'nul\000byte\n'; printf 'latin \351t\351\n' >&2; printf '%s\n' "`+long+`"; printf 'last\n'; exec sleep 60`))
	h.start()
	waitFor(t, "the lines", func() bool { return strings.Contains(h.jobLogText("test.bytes"), " last\n") })
	tgt := h.target("test.bytes")
	check := func(what string, ls xpc.Array, want int) {
		t.Helper()
		if len(ls) < want {
			t.Fatalf("%s: %d lines, want %d: %v", what, len(ls), want, ls)
		}
		for _, l := range ls {
			if s := string(l.(xpc.String)); !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Errorf("%s: %q", what, s)
			}
		}
	}
	r, err := h.admin(bootstrap.OpLog, bootstrap.KeyTarget, tgt)
	if err != nil {
		t.Fatalf("log: %v", err)
	}
	ls, _ := r.Array(bootstrap.KeyLogLines)
	check("log", ls, 4)
	if s := string(ls[0].(xpc.String)); !strings.HasSuffix(s, "nul\uFFFDbyte") {
		t.Errorf("the NUL line: %q", s)
	}
	pr, err := h.admin(bootstrap.OpPrint, bootstrap.KeyTarget, tgt)
	if err != nil {
		t.Fatalf("print: %v", err)
	}
	ls, _ = pr.Array(bootstrap.KeyLog)
	check("print", ls, 4)

	got := make(chan xpc.Array, 4)
	fc := h.dial(xpc.HandlerFunc(func(_ context.Context, m *xpc.Message) {
		ls, _ := m.Body.Array(bootstrap.KeyLogLines)
		got <- ls
	}))
	defer fc.Cancel()
	r, err = fc.SendWithReply(testCtx(t), xpc.Dict(bootstrap.KeyOp, bootstrap.OpLog, bootstrap.KeyTarget, tgt, bootstrap.KeyFollow, true))
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	ls, _ = r.Array(bootstrap.KeyLogLines)
	check("follow's first reply", ls, 4)
	h.d.sup.logs.record(UserDomain(uint32(os.Geteuid())), "test.bytes",
		logRecord{at: time.Now(), stream: "out", prio: 6, text: "more\x00\xff"})
	select {
	case ls := <-got:
		check("followed", ls, 1)
	case <-time.After(testTimeout):
		t.Fatal("the follower got nothing")
	}
}
