package launchd

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goxpc/xpc"
)

const eventsPlist = `<key>LaunchEvents</key><dict>
	<key>com.apple.xpc.activity</key><dict>
		<key>com.example.refresh</key><dict>
			<key>Interval</key><integer>2</integer>
			<key>AllowBattery</key><true/>
			<key>Priority</key><string>Utility</string>
			<key>Flavour</key><string>x</string>
		</dict>
	</dict>
	<key>com.apple.notifyd.matching</key><dict>
		<key>changed</key><dict><key>Notification</key><string>com.example.changed</string></dict>
	</dict>
	<key>com.apple.iokit.matching</key><dict>
		<key>null</key><dict>
			<key>SUBSYSTEM</key><string>mem</string>
			<key>DEVNAME</key><string>nu*</string>
			<key>IOProviderClass</key><string>IOUSBDevice</string>
		</dict>
		<key>iokit-only</key><dict><key>idVendor</key><integer>1452</integer></dict>
	</dict>
	<key>com.apple.fsevents.matching</key><dict/>
</dict>`

func TestLaunchEvents(t *testing.T) {
	j, err := Parse(testFile, []byte(doc(minimal+eventsPlist)))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := j.Activities["com.example.refresh"]
	if !ok || c.Interval != 2*time.Second || !c.AllowBattery || c.Priority != xpc.PriorityUtility {
		t.Errorf("activities: %+v", j.Activities)
	}
	if s, _ := j.LaunchEvents[StreamNotify]["changed"].String(NotificationKey); s != "com.example.changed" {
		t.Errorf("notify: %v", j.LaunchEvents[StreamNotify])
	}
	ue := j.LaunchEvents[StreamUEvent]["null"]
	if ue == nil || ue.Len() != 2 {
		t.Fatalf("uevent: %v", j.LaunchEvents)
	}
	if _, ok := j.LaunchEvents[StreamUEvent]["iokit-only"]; ok {
		t.Error("a descriptor with only IOKit keys was kept")
	}
	var warned []string
	for _, w := range j.Warnings {
		warned = append(warned, w.Key)
	}
	for _, want := range []string{
		"LaunchEvents.com.apple.xpc.activity.com.example.refresh.Flavour",
		"LaunchEvents.com.apple.iokit.matching.null.IOProviderClass",
		"LaunchEvents.com.apple.iokit.matching.iokit-only",
		"LaunchEvents.com.apple.fsevents.matching",
	} {
		if !strings.Contains(strings.Join(warned, "\n"), want) {
			t.Errorf("no warning for %s in %q", want, warned)
		}
	}
	// The canonical form parses back to the same job, and events count in
	// the fingerprint.
	back, err := FromDictionary(testFile, j.ToDictionary())
	if err != nil || !back.Equal(j) {
		t.Fatalf("round trip: %v, equal %v", err, back.Equal(j))
	}
	bare, _ := Parse(testFile, []byte(doc(minimal)))
	if bare.Fingerprint() == j.Fingerprint() {
		t.Error("LaunchEvents do not change the fingerprint")
	}
}

func TestLaunchEventsErrors(t *testing.T) {
	for name, body := range map[string]string{
		"negative interval": `<key>com.apple.xpc.activity</key><dict><key>a</key><dict><key>Interval</key><integer>-1</integer></dict></dict>`,
		"repeating alone":   `<key>com.apple.xpc.activity</key><dict><key>a</key><dict><key>Repeating</key><true/></dict></dict>`,
		"bad priority":      `<key>com.apple.xpc.activity</key><dict><key>a</key><dict><key>Priority</key><string>Urgent</string></dict></dict>`,
		"no notification":   `<key>com.apple.notifyd.matching</key><dict><key>a</key><dict/></dict>`,
		"bad notification":  `<key>com.apple.notifyd.matching</key><dict><key>a</key><dict><key>Notification</key><string>a b</string></dict></dict>`,
		"bad pattern":       `<key>org.goxpc.uevent</key><dict><key>a</key><dict><key>DEVNAME</key><string>[</string></dict></dict>`,
		"long pattern":      `<key>org.goxpc.uevent</key><dict><key>a</key><dict><key>DEVPATH</key><string>` + strings.Repeat("*?", MaxUEventPattern) + `</string></dict></dict>`,
		"bad event name":    `<key>org.goxpc.uevent</key><dict><key>a/b</key><dict><key>DEVNAME</key><string>x</string></dict></dict>`,
	} {
		_, err := Parse(testFile, []byte(doc(minimal+`<key>LaunchEvents</key><dict>`+body+`</dict>`)))
		if !errors.Is(err, ErrValueNotAllowed) && !errors.Is(err, ErrMissingKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var keys strings.Builder
	for i := range MaxUEventKeys + 1 {
		keys.WriteString(fmt.Sprintf("<key>K%d</key><string>x</string>", i))
	}
	if _, err := Parse(testFile, []byte(doc(minimal+`<key>LaunchEvents</key><dict><key>org.goxpc.uevent</key><dict><key>a</key><dict>`+keys.String()+`</dict></dict></dict>`))); !errors.Is(err, ErrValueNotAllowed) {
		t.Errorf("more than %d properties: %v", MaxUEventKeys, err)
	}
	var many strings.Builder
	for i := range MaxLaunchEvents + 1 {
		many.WriteString(`<key>n` + strings.Repeat("x", i) + `</key><dict><key>Notification</key><string>n</string></dict>`)
	}
	_, err := Parse(testFile, []byte(doc(minimal+`<key>LaunchEvents</key><dict><key>com.apple.notifyd.matching</key><dict>`+many.String()+`</dict></dict>`)))
	if !errors.Is(err, ErrValueNotAllowed) {
		t.Errorf("more than %d events: %v", MaxLaunchEvents, err)
	}
}
