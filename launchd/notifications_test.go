package launchd

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

const notificationsPlist = `<key>Notifications</key><dict>
	<key>com.example.changed</key><dict><key>PostRequirement</key><string>uid 1000 or group staff</string></dict>
</dict>`

func TestNotifications(t *testing.T) {
	j, err := Parse(testFile, []byte(doc(minimal+notificationsPlist)))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := j.Notifications["com.example.changed"]
	if !ok || g.PostRequirement.String() != "uid 1000 or group staff" {
		t.Fatalf("notifications: %+v", j.Notifications)
	}
	back, err := FromDictionary(testFile, j.ToDictionary())
	if err != nil || !back.Equal(j) || back.Notifications["com.example.changed"].PostRequirement.String() != g.PostRequirement.String() {
		t.Fatalf("round trip: %v, %+v", err, back)
	}
	bare, _ := Parse(testFile, []byte(doc(minimal)))
	if bare.Fingerprint() == j.Fingerprint() {
		t.Error("Notifications do not change the fingerprint")
	}
}

func TestNotificationsErrors(t *testing.T) {
	for name, body := range map[string]string{
		"no requirement":    `<key>n</key><dict/>`,
		"bad requirement":   `<key>n</key><dict><key>PostRequirement</key><string>uid</string></dict>`,
		"empty requirement": `<key>n</key><dict><key>PostRequirement</key><string></string></dict>`,
		"bad name":          `<key>a b</key><dict><key>PostRequirement</key><string>uid 0</string></dict>`,
		"long name":         `<key>` + strings.Repeat("n", MaxNotificationNameLen+1) + `</key><dict><key>PostRequirement</key><string>uid 0</string></dict>`,
		"not a dictionary":  `<key>n</key><string>uid 0</string>`,
	} {
		_, err := Parse(testFile, []byte(doc(minimal+`<key>Notifications</key><dict>`+body+`</dict>`)))
		if !errors.Is(err, ErrValueNotAllowed) && !errors.Is(err, ErrMissingKey) && !errors.Is(err, ErrBadType) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var many strings.Builder
	for i := range MaxNotificationGrants + 1 {
		many.WriteString(`<key>n` + strconv.Itoa(i) + `</key><dict><key>PostRequirement</key><string>uid 0</string></dict>`)
	}
	_, err := Parse(testFile, []byte(doc(minimal+`<key>Notifications</key><dict>`+many.String()+`</dict>`)))
	if !errors.Is(err, ErrValueNotAllowed) {
		t.Errorf("more than %d grants: %v", MaxNotificationGrants, err)
	}
	if _, err := Parse(testFile, []byte(doc(minimal+`<key>Notifications</key><dict><key>n</key><dict><key>PostRequirement</key><string>uid 0</string></dict></dict>`))); err != nil {
		t.Errorf("a valid grant: %v", err)
	}
}
