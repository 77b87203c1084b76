package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

// pcapngBlockT is one block read back from a capture.
type pcapngBlockT struct {
	typ  uint32
	body []byte
}

// readPCAPNG splits a capture into its blocks, checking each block's two
// lengths agree; a block cut short (still being written) ends the list.
func readPCAPNG(t *testing.T, b []byte) []pcapngBlockT {
	t.Helper()
	var blocks []pcapngBlockT
	for len(b) >= 12 {
		typ, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if n < 12 || n%4 != 0 || int(n) > len(b) {
			break
		}
		if binary.LittleEndian.Uint32(b[n-4:]) != n {
			t.Fatalf("block of type %#x: lengths %d and %d", typ, n, binary.LittleEndian.Uint32(b[n-4:]))
		}
		blocks = append(blocks, pcapngBlockT{typ, b[8 : n-4]})
		b = b[n:]
	}
	return blocks
}

// capture writes a section header, the interface (USER0, nanoseconds),
// and one packet per message: the body, the direction flag and a comment.
func TestCaptureWritesPCAPNG(t *testing.T) {
	s, target := monitoredServer(t, "test.xpcctl.cap")
	file := filepath.Join(t.TempDir(), "cap.pcapng")
	out, errb := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"capture", target, file}, strings.NewReader(""), out, errb) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "Monitoring") {
		if time.Now().After(deadline) {
			t.Fatalf("capture did not attach; stderr:\n%s", errb)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := s.Connect(t, "test.xpcctl.cap")
	if _, err := c.SendWithReply(context.Background(), xpc.Dict("cmd", "cap")); err != nil {
		t.Fatal(err)
	}
	var blocks []pcapngBlockT
	for len(blocks) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("capture wrote %d blocks; stderr:\n%s", len(blocks), errb)
		}
		time.Sleep(10 * time.Millisecond)
		b, _ := os.ReadFile(file)
		blocks = readPCAPNG(t, b)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d after Ctrl-C; stderr:\n%s", code, errb)
	}
	if blocks[0].typ != pcapngSHB || binary.LittleEndian.Uint32(blocks[0].body) != pcapngByteOrder {
		t.Fatalf("first block %#x", blocks[0].typ)
	}
	if blocks[1].typ != pcapngIDB || binary.LittleEndian.Uint16(blocks[1].body) != pcapngLinkUser0 {
		t.Fatalf("second block %#x", blocks[1].typ)
	}
	for i, want := range []struct {
		flags   uint32
		key     string
		comment string
	}{{pcapngInbound, "cmd", "request #"}, {pcapngOutbound, "answer", "reply to #"}} {
		p := blocks[2+i]
		if p.typ != pcapngEPB {
			t.Fatalf("block %d: type %#x", 2+i, p.typ)
		}
		capLen := binary.LittleEndian.Uint32(p.body[12:])
		data := p.body[20 : 20+capLen]
		obj, err := xpc.Decode(data)
		d, _ := obj.(*xpc.Dictionary)
		if err != nil || d == nil || d.Get(want.key) == nil {
			t.Fatalf("packet %d: %v %v", i, obj, err)
		}
		opts := p.body[20+(capLen+3)/4*4:]
		if code, v := binary.LittleEndian.Uint16(opts), binary.LittleEndian.Uint32(opts[4:]); code != pcapngOptFlags || v != want.flags {
			t.Errorf("packet %d: option %d = %d, want flags %d", i, code, v, want.flags)
		}
		if !strings.Contains(string(opts[8:]), want.comment) {
			t.Errorf("packet %d: comment %q, want %q", i, opts[8:], want.comment)
		}
	}
}
