package xpcd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/internal/uevent"
	"github.com/goxpc/xpc/launchd"
)

// TestEventRecordBound: the largest payloads xpcd can queue, a uevent of
// uevent.MaxMessage bytes in uevent.MaxProps properties, each byte one JSON
// escapes, and a notification of the longest name, fit the bound that
// events.json states for one event.
func TestEventRecordBound(t *testing.T) {
	// "ACTION@DEVPATH\0" and MaxProps "KEY=VALUE\0" fields, every value
	// byte a control character (six bytes in JSON).
	var b strings.Builder
	b.WriteString("change@/d\x00ACTION=change\x00DEVPATH=/d\x00")
	per := (uevent.MaxMessage - b.Len()) / (uevent.MaxProps - 2)
	for i := 0; b.Len()+per <= uevent.MaxMessage && i < uevent.MaxProps-2; i++ {
		k := fmt.Sprintf("K%03d=", i)
		b.WriteString(k + strings.Repeat("\x01", per-len(k)-1) + "\x00")
	}
	ev, err := uevent.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	big, err := xpc.MarshalTaggedJSON(ev.Dictionary())
	if err != nil {
		t.Fatal(err)
	}
	notify := xpc.NewDictionary(2)
	notify.Set(launchd.NotificationKey, xpc.String(strings.Repeat("\x01", launchd.MaxNotificationNameLen)))
	notify.Set(payloadState, xpc.Uint64(^uint64(0)))
	small, err := xpc.MarshalTaggedJSON(notify)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest uevent payload %d bytes (message %d bytes, %d properties), notification %d bytes; bound %d",
		len(big), b.Len(), len(ev.Props), len(small), maxEventPayloadBytes)
	if len(big) > maxEventPayloadBytes || len(small) > maxEventPayloadBytes {
		t.Errorf("a payload over the bound of %d bytes", maxEventPayloadBytes)
	}
}
