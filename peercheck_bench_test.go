package xpc

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkPeerRequirement measures, in one run, what WithPeerRequirement
// costs a message against the floor of the check itself:
//
//   - floor/readlink: one os.Readlink of /proc/PID/exe, the floor
//     (one look at the peer's executable through /proc);
//   - floor/exeChanged: one Peer.exeChanged after a Check that examined
//     the executable, the look each message pays (one fstatat);
//   - oneway/*: one-way messages from a client to a listener whose peers
//     require, of the client, nothing, its uid, or its executable: ns/op is
//     per message delivered to the handler (the loop waits for the last). With
//     -cpu 1 the sender and the receiver share one thread, so the
//     receiver's check adds to each message in full;
//   - roundtrip/*: SendWithReply, the requirement on both sides, so each
//     round trip is checked twice (the request, the reply).
//
// Run it with:
//
//	go test -run '^$' -bench BenchmarkPeerRequirement -count 10 -cpu 1,2 .
func BenchmarkPeerRequirement(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	reqs := []struct{ name, text string }{
		{"none", ""},
		{"uid", "uid " + strconv.Itoa(os.Getuid())},
		{"exe", "exe " + quoteValue(exe)},
	}
	b.Run("floor/readlink", func(b *testing.B) {
		link := "/proc/" + strconv.Itoa(os.Getpid()) + "/exe"
		for b.Loop() {
			if _, err := os.Readlink(link); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor/exeChanged", func(b *testing.B) {
		p := selfPeer(b)
		if err := MustParseRequirement("exe " + quoteValue(exe)).Check(p); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if changed, err := p.exeChanged(); changed || err != nil {
				b.Fatal(changed, err)
			}
		}
	})
	for _, r := range reqs {
		b.Run("oneway/"+r.name, func(b *testing.B) { benchOneWay(b, requirementOpts(r.text)) })
	}
	for _, r := range reqs {
		b.Run("roundtrip/"+r.name, func(b *testing.B) { benchRoundTrip(b, requirementOpts(r.text)) })
	}
}

func requirementOpts(text string) []Option {
	if text == "" {
		return nil
	}
	return []Option{WithPeerRequirement(MustParseRequirement(text))}
}

// requirementPair returns an activated client of a listener, both given
// opts, and the count of messages the listener's peers received; the
// peers answer requests with their body.
func requirementPair(b *testing.B, opts []Option) (*Connection, *atomic.Int64) {
	b.Helper()
	var received atomic.Int64
	l, err := NewListener(opts...)
	if err != nil {
		b.Fatal(err)
	}
	l.SetHandler(func(p *Connection) {
		p.SetHandler(HandlerFunc(func(ctx context.Context, m *Message) {
			received.Add(1)
			if m.WantsReply() {
				_ = m.Reply(ctx, m.Body)
			}
		}))
		p.Activate()
	})
	l.Activate()
	ep, err := l.Endpoint()
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewEndpointConnection(ep, opts...)
	ep.Close()
	if err != nil {
		b.Fatal(err)
	}
	c.SetHandler(HandlerFunc(func(context.Context, *Message) {}))
	c.Activate()
	b.Cleanup(func() {
		c.Cancel()
		<-c.Done()
		l.Cancel()
		<-l.Done()
		for _, p := range l.Peers() {
			p.Cancel()
			<-p.Done()
		}
	})
	// The first round trip makes the link and checks both peers, out of
	// the measurement.
	if _, err := c.SendWithReply(context.Background(), Dict("op", "warm")); err != nil {
		b.Fatal(err)
	}
	return c, &received
}

func benchOneWay(b *testing.B, opts []Option) {
	c, received := requirementPair(b, opts)
	ctx := context.Background()
	msg := Dict("op", "ping", "seq", Int64(1))
	want := received.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	want += int64(b.N)
	for received.Load() < want {
		if err := c.Err(); err != nil {
			b.Fatal(err)
		}
		runtime.Gosched()
	}
}

func benchRoundTrip(b *testing.B, opts []Option) {
	c, _ := requirementPair(b, opts)
	ctx := context.Background()
	msg := Dict("op", "ping", "seq", Int64(1))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.SendWithReply(ctx, msg); err != nil {
			b.Fatal(fmt.Errorf("round trip: %w", err))
		}
	}
}
