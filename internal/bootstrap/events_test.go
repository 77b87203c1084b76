package bootstrap

import "testing"

func TestNotificationOwner(t *testing.T) {
	for name, want := range map[string]int64{
		"user.uid.1000.com.example.changed": 1000,
		"user.uid.0.x":                      0,
		"user.uid.4294967295.x":             4294967295,
		"user.uid.4294967296.x":             -1,
		"user.uid.01000.x":                  -1,
		"user.uid.1000.":                    -1,
		"user.uid.1000":                     -1,
		"user.uid..x":                       -1,
		"user.uid.-1.x":                     -1,
		"user.uid.1e3.x":                    -1,
		"com.example.changed":               -1,
		"User.uid.1000.x":                   -1,
	} {
		uid, user := NotificationOwner(name)
		if want < 0 && user || want >= 0 && (!user || int64(uid) != want) {
			t.Errorf("%s: %d %v, want %d", name, uid, user, want)
		}
	}
}
