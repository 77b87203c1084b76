package xpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goxpc/xpc/internal/sock"
)

// Typed messages over a real connection pair: SendValue, Invoke, Decode,
// ReplyValue (value_conn.go).

type forecastRequest struct {
	City string `xpc:"city,required"`
	Days int    `xpc:"days"`
}

type forecastReply struct {
	City  string    `xpc:"city"`
	Temps []float64 `xpc:"temps"`
}

// valuePair connects two connections over a socket pair: the service end
// runs fn for each message; the client end is returned. Both end with the
// test.
func valuePair(t testing.TB, fn func(ctx context.Context, m *Message), clientOpts, serviceOpts []Option) *Connection {
	t.Helper()
	a, b, err := sock.Pair()
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := os.NewFile(uintptr(a), "client"), os.NewFile(uintptr(b), "service")
	defer fa.Close()
	defer fb.Close()
	svc, err := NewConnectionFromFile(fb, serviceOpts...)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetHandler(HandlerFunc(fn))
	svc.Activate()
	c, err := NewConnectionFromFile(fa, clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	c.SetHandler(HandlerFunc(func(context.Context, *Message) {}))
	c.Activate()
	t.Cleanup(func() {
		c.Cancel()
		svc.Cancel()
		<-c.Done()
		<-svc.Done()
	})
	return c
}

// forecastService answers a forecastRequest, or with a decode error, or,
// for the city "Atlantis", with errNoSuchCity.
func forecastService(ctx context.Context, m *Message) {
	var req forecastRequest
	if err := m.Decode(&req); err != nil {
		_ = m.ReplyError(ctx, ErrorObjectOf(err))
		return
	}
	switch req.City {
	case "Atlantis":
		_ = m.ReplyError(ctx, ErrorObjectOf(errNoSuchCity))
		return
	case "Quota":
		_ = m.ReplyError(ctx, ErrorObjectOf(fmt.Errorf("forecast: %w", &quotaError{Limit: 5, Used: 6, User: "ann"})))
		return
	}
	temps := make([]float64, req.Days)
	for i := range temps {
		temps[i] = 20 + float64(i)
	}
	_ = m.ReplyValue(ctx, forecastReply{City: req.City, Temps: temps})
}

func TestInvoke(t *testing.T) {
	c := valuePair(t, forecastService, nil, nil)
	ctx := testCtx(t)
	var r forecastReply
	if err := c.Invoke(ctx, forecastRequest{City: "Oslo", Days: 2}, &r); err != nil {
		t.Fatal(err)
	}
	if r.City != "Oslo" || len(r.Temps) != 2 || r.Temps[1] != 21 {
		t.Errorf("reply %+v", r)
	}
	// A pointer, a map and a *Dictionary are requests too.
	for _, req := range []any{&forecastRequest{City: "Bergen"}, map[string]any{"city": "Bergen"}, Dict("city", "Bergen")} {
		r = forecastReply{}
		if err := c.Invoke(ctx, req, &r); err != nil || r.City != "Bergen" {
			t.Errorf("Invoke(%T): %v, %+v", req, err, r)
		}
	}
	// reply nil: the reply is not decoded.
	if err := c.Invoke(ctx, forecastRequest{City: "Oslo"}, nil); err != nil {
		t.Errorf("Invoke with reply nil: %v", err)
	}
	// An error object: a *RemoteError that restores the sentinel.
	err := c.Invoke(ctx, forecastRequest{City: "Atlantis"}, &r)
	var re *RemoteError
	if !errors.Is(err, errNoSuchCity) || !errors.As(err, &re) || re.Code() != 1 {
		t.Errorf("Invoke of an error reply: %v", err)
	}
	var qe *quotaError
	if err := c.Invoke(ctx, forecastRequest{City: "Quota"}, &r); !errors.As(err, &qe) || *qe != (quotaError{Limit: 5, Used: 6, User: "ann"}) {
		t.Errorf("Invoke of a struct error: %v (%+v)", err, qe)
	}
	// Not strict: a reply with keys the type lacks decodes.
	var small struct {
		City string `xpc:"city"`
	}
	if err := c.Invoke(ctx, forecastRequest{City: "Oslo", Days: 1}, &small); err != nil || small.City != "Oslo" {
		t.Errorf("lax Invoke: %v, %+v", err, small)
	}
}

func TestSendValue(t *testing.T) {
	got := make(chan forecastRequest, 1)
	c := valuePair(t, func(ctx context.Context, m *Message) {
		var req forecastRequest
		if err := m.Decode(&req); err != nil {
			t.Errorf("Decode: %v", err)
		}
		got <- req
	}, nil, nil)
	if err := c.SendValue(testCtx(t), forecastRequest{City: "Oslo", Days: 3}); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if req != (forecastRequest{City: "Oslo", Days: 3}) {
			t.Errorf("received %+v", req)
		}
	case <-time.After(testTimeout):
		t.Fatal("nothing received")
	}
}

// TestValueNotDictionary: values that are not dictionaries are refused
// with a typed error, before anything is sent.
func TestValueNotDictionary(t *testing.T) {
	var received atomic.Int32
	replyErr := make(chan error, 1)
	c := valuePair(t, func(ctx context.Context, m *Message) {
		received.Add(1)
		replyErr <- m.ReplyValue(ctx, []int{1})
		_ = m.ReplyValue(ctx, forecastReply{City: "fallback"})
	}, nil, nil)
	ctx := testCtx(t)
	for _, req := range []any{42, "city", []string{"a"}, nil, (*Dictionary)(nil)} {
		err := c.SendValue(ctx, req)
		var fe *FieldError
		if !errors.As(err, &fe) && !errors.Is(err, ErrNotMessage) {
			t.Errorf("SendValue(%#v): %v, want a *FieldError", req, err)
		}
		err = c.Invoke(ctx, req, &forecastReply{})
		var tm *TypeMismatchError
		if !errors.As(err, &tm) && !errors.Is(err, ErrNotMessage) || !strings.HasPrefix(err.Error(), "xpc: ") {
			t.Errorf("Invoke(%#v): %v, want a type mismatch", req, err)
		}
	}
	for _, reply := range []any{forecastReply{}, (*forecastReply)(nil), 3} {
		if err := c.Invoke(ctx, forecastRequest{City: "x"}, reply); !errors.Is(err, ErrNotPointer) {
			t.Errorf("Invoke into %T: %v, want ErrNotPointer", reply, err)
		}
	}
	if n := received.Load(); n != 0 {
		t.Errorf("%d bad messages were sent", n)
	}
	var r forecastReply
	if err := c.Invoke(ctx, forecastRequest{City: "x"}, &r); err != nil || r.City != "fallback" {
		t.Errorf("after a refused ReplyValue: %v, %+v", err, r)
	}
	var tm *TypeMismatchError
	if err := <-replyErr; !errors.As(err, &tm) || tm.Want != TypeDictionary {
		t.Errorf("ReplyValue of a slice: %v", err)
	}
}

// TestStrictConnection: WithStrictDecoding on the service end makes
// Decode strict; on the client end, Invoke; the other end stays lax.
func TestStrictConnection(t *testing.T) {
	type extraRequest struct {
		City  string `xpc:"city"`
		Units string `xpc:"units"`
	}
	type wideReply struct {
		City string `xpc:"city"`
	}
	ctx := testCtx(t)
	strict := []Option{WithStrictDecoding()}
	t.Run("service", func(t *testing.T) {
		c := valuePair(t, forecastService, nil, strict)
		var r forecastReply
		err := c.Invoke(ctx, extraRequest{City: "Oslo", Units: "C"}, &r)
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "units: unknown key") {
			t.Errorf("unknown key: %v", err)
		}
		err = c.Invoke(ctx, Dict("City", "Oslo"), &r)
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "did you mean city?") {
			t.Errorf("key in the wrong case: %v", err)
		}
		err = c.Invoke(ctx, Dict("days", Int64(1)), &r)
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "city: missing required key") {
			t.Errorf("missing key: %v", err)
		}
		if err := c.Invoke(ctx, forecastRequest{City: "Oslo"}, &wideReply{}); err != nil {
			t.Errorf("lax client: %v", err)
		}
	})
	t.Run("client", func(t *testing.T) {
		c := valuePair(t, forecastService, strict, nil)
		var r wideReply
		err := c.Invoke(ctx, forecastRequest{City: "Oslo"}, &r)
		var fe *FieldError
		if !errors.Is(err, ErrUnknownKey) || !errors.As(err, &fe) || fe.Path != "temps" {
			t.Errorf("reply with a key the type lacks: %v", err)
		}
		if err := c.Invoke(ctx, extraRequest{City: "Oslo", Units: "C"}, &forecastReply{}); err != nil {
			t.Errorf("lax service: %v", err)
		}
	})
	t.Run("both", func(t *testing.T) {
		c := valuePair(t, forecastService, strict, strict)
		var r forecastReply
		if err := c.Invoke(ctx, forecastRequest{City: "Oslo", Days: 1}, &r); err != nil || r.City != "Oslo" {
			t.Errorf("exact types: %v, %+v", err, r)
		}
		if err := c.Invoke(ctx, forecastRequest{City: "Atlantis"}, &r); !errors.Is(err, errNoSuchCity) {
			t.Errorf("error reply: %v", err)
		}
	})
}

// fdsTo counts this process's descriptors open on path.
func fdsTo(t *testing.T, path string) int {
	n := 0
	for _, target := range openFDs(t) {
		if target == path {
			n++
		}
	}
	return n
}

// waitFDs waits until n descriptors are open on path (closes by the other
// end of the pair are asynchronous).
func waitFDs(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for fdsTo(t, path) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open on %s, want %d", fdsTo(t, path), filepath.Base(path), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestValueDescriptors: descriptors placed in the value are the caller's;
// those under keys with no field are closed by Invoke and Decode, and all
// of them when the value does not decode or is not asked for.
func TestValueDescriptors(t *testing.T) {
	// A leaked *os.File is closed by its finalizer when the garbage
	// collector runs: keep it from hiding a leak.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	dir := t.TempDir()
	keep, junk := filepath.Join(dir, "keep"), filepath.Join(dir, "junk")
	for _, p := range []string{keep, junk} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	open := func(p string) *FD {
		f, err := os.Open(p)
		if err != nil {
			t.Error(err)
		}
		return NewFD(f)
	}
	type withFile struct {
		File *FD   `xpc:"file"`
		N    int   `xpc:"n"`
		More []*FD `xpc:"more"`
	}
	received := make(chan error, 4)
	c := valuePair(t, func(ctx context.Context, m *Message) {
		var in withFile
		err := m.Decode(&in) // the service end: junk under "extra" is closed
		if in.File != nil {
			in.File.Close()
		}
		received <- err
		if !m.WantsReply() {
			return
		}
		kf, jf := open(keep), open(junk)
		defer kf.Close()
		defer jf.Close()
		_ = m.Reply(ctx, Dict("file", kf, "extra", jf, "nested", Dict("x", jf), "n", Int64(1)))
	}, nil, nil)
	ctx := testCtx(t)

	var r withFile
	if err := c.Invoke(ctx, Dict(), &r); err != nil {
		t.Fatal(err)
	}
	<-received
	if r.File == nil {
		t.Fatal("no descriptor in the value")
	}
	waitFDs(t, junk, 0)
	waitFDs(t, keep, 1)
	if _, err := r.File.File().Stat(); err != nil {
		t.Errorf("the value's descriptor: %v", err)
	}
	r.File.Close()
	waitFDs(t, keep, 0)

	// reply nil, or a reply that does not decode: every descriptor closed.
	if err := c.Invoke(ctx, Dict(), nil); err != nil {
		t.Fatal(err)
	}
	<-received
	var bad struct {
		N string `xpc:"n"`
	}
	if err := c.Invoke(ctx, Dict(), &bad); err == nil {
		t.Fatal("a mismatched reply decoded")
	}
	<-received
	waitFDs(t, junk, 0)
	waitFDs(t, keep, 0)

	// The service end's Decode: the same rule, for a one-way message.
	kf, jf := open(keep), open(junk)
	err := c.Send(ctx, Dict("file", kf, "extra", jf))
	kf.Close()
	jf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-received; err != nil {
		t.Fatalf("Decode: %v", err)
	}
	waitFDs(t, junk, 0)
	waitFDs(t, keep, 0)
}

// TestDecodeNoBody: a Message made without a body (as a unit test may)
// decodes to an error, not a panic.
func TestDecodeNoBody(t *testing.T) {
	var m Message
	var v forecastRequest
	if err := m.Decode(&v); !errors.Is(err, ErrNilObject) || !strings.HasPrefix(err.Error(), "xpc: ") {
		t.Errorf("Decode of no body: %v", err)
	}
}
