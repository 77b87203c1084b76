package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/bootstrap"
	"github.com/spf13/pflag"
)

var captureCommand = &command{
	name:    "capture",
	args:    "TARGET FILE | --pid PID FILE",
	summary: "write a service's messages to a pcapng file, as monitor shows them",
	help: `Writes every message monitor would show to FILE in pcapng, one packet
each, for Wireshark and other tools that read captures: the packet is the
message's encoded XPC body (cut at 64 KiB; the original length is the
whole), on one interface of link type USER0 (147); the packet's direction
flag says inbound (into the service) or outbound, and its comment gives the
peer's pid, the kind and id or reply-to, and the descriptor count. Attaching
follows monitor's rules. Ctrl-C ends it; the file is complete after each
packet.

` + instanceHelp,
	setup: setupCapture,
}

func setupCapture(fs *pflag.FlagSet) runFunc {
	pid := fs.Int64("pid", 0, "capture the running instance with this `PID`")
	return func(ctx context.Context, s stdio, c *command, pos []string) int {
		return runCapture(ctx, s, c, pos, *pid)
	}
}

func runCapture(ctx context.Context, s stdio, c *command, pos []string, pid int64) int {
	if len(pos) == 0 {
		return c.usageError(s, "no FILE")
	}
	req, what, ok := monitorRequest(pos[:len(pos)-1], pid)
	if !ok {
		return c.usageError(s, "give a TARGET or --pid PID, then FILE")
	}
	out, err := os.OpenFile(pos[len(pos)-1], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return c.fail(s, "%v", err)
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	if _, err := w.Write(pcapngHeader()); err != nil {
		return c.fail(s, "%v", err)
	}
	if err := w.Flush(); err != nil {
		return c.fail(s, "%v", err)
	}
	f, code, ok := openMonitor(ctx, s, c, req, what)
	if !ok {
		return code
	}
	defer f.Close()
	return readMonitor(ctx, s, c, f, func(rec *xpc.Dictionary) error {
		if _, err := w.Write(pcapngPacket(rec)); err != nil {
			return err
		}
		return w.Flush()
	})
}

// pcapng block types, options and values (the pcapng specification).
const (
	pcapngSHB         = 0x0A0D0D0A
	pcapngIDB         = 1
	pcapngEPB         = 6
	pcapngByteOrder   = 0x1A2B3C4D
	pcapngLinkUser0   = 147
	pcapngOptEnd      = 0
	pcapngOptComment  = 1
	pcapngOptFlags    = 2 // epb_flags
	pcapngOptTSResol  = 9 // if_tsresol
	pcapngInbound     = 1
	pcapngOutbound    = 2
	pcapngNanoseconds = 9
)

// pcapngHeader is a section header block and the one interface's
// description block (timestamps in nanoseconds).
func pcapngHeader() []byte {
	var shb []byte
	shb = binary.LittleEndian.AppendUint32(shb, pcapngByteOrder)
	shb = binary.LittleEndian.AppendUint16(shb, 1) // version 1.0
	shb = binary.LittleEndian.AppendUint16(shb, 0)
	shb = binary.LittleEndian.AppendUint64(shb, ^uint64(0)) // section length unknown
	var idb []byte
	idb = binary.LittleEndian.AppendUint16(idb, pcapngLinkUser0)
	idb = binary.LittleEndian.AppendUint16(idb, 0)
	idb = binary.LittleEndian.AppendUint32(idb, 0) // no snapshot length
	idb = pcapngOption(idb, pcapngOptTSResol, []byte{pcapngNanoseconds})
	idb = pcapngOption(idb, pcapngOptEnd, nil)
	return append(pcapngBlock(pcapngSHB, shb), pcapngBlock(pcapngIDB, idb)...)
}

// pcapngPacket is an enhanced packet block holding a record's body.
func pcapngPacket(rec *xpc.Dictionary) []byte {
	at, _ := rec.Date(bootstrap.KeyMonTime)
	body, _ := rec.Data(bootstrap.KeyMonBody)
	size, _ := rec.Int64(bootstrap.KeyMonSize)
	dir, _ := rec.String(bootstrap.KeyMonDir)
	ts := uint64(at.UnixNano())
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0) // the interface
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = binary.LittleEndian.AppendUint32(b, uint32(max(size, int64(len(body)))))
	b = append(b, body...)
	b = pad4(b)
	flags := uint32(pcapngInbound)
	if dir == bootstrap.MonOut {
		flags = pcapngOutbound
	}
	b = pcapngOption(b, pcapngOptFlags, binary.LittleEndian.AppendUint32(nil, flags))
	b = pcapngOption(b, pcapngOptComment, []byte(packetComment(rec)))
	b = pcapngOption(b, pcapngOptEnd, nil)
	return pcapngBlock(pcapngEPB, b)
}

// packetComment says what the packet's bytes do not: the peer, the kind
// and id, the descriptors, and anything dropped before it.
func packetComment(rec *xpc.Dictionary) string {
	pid, _ := rec.Int64(bootstrap.KeyMonPID)
	kind, _ := rec.String(bootstrap.KeyMonKind)
	fds, _ := rec.Int64(bootstrap.KeyMonFDs)
	text := fmt.Sprintf("pid %d %s", pid, kind)
	if id, err := rec.Uint64(bootstrap.KeyMonID); err == nil {
		text += fmt.Sprintf(" #%d", id)
	}
	if id, err := rec.Uint64(bootstrap.KeyMonReplyTo); err == nil {
		text += fmt.Sprintf(" reply to #%d", id)
	}
	text += fmt.Sprintf(", %d fds", fds)
	if n, _ := rec.Uint64(bootstrap.KeyMonDropped); n > 0 {
		text += fmt.Sprintf(", %d messages dropped before it", n)
	}
	return text
}

// pcapngBlock frames body as a block of type t: type, total length, body,
// total length.
func pcapngBlock(t uint32, body []byte) []byte {
	n := uint32(12 + len(body))
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, n), t)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, n)
}

// pcapngOption appends an option: code, length, value padded to 4.
func pcapngOption(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	return pad4(append(b, v...))
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
