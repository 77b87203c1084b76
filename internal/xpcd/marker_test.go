package xpcd

import "testing"

// The label, the only field that may hold the separator, comes last and
// survives a round trip; a value with a field missing is no marker.
func TestMarkerRoundTrip(t *testing.T) {
	mk := marker{instance: "0123456789abcdef", nonce: "fedcba9876543210", fingerprint: "ab", reason: reasonKeepAlive,
		domain: "user/1000", label: "com.example.a:b"}
	got, ok := parseMarker(mk.String())
	if !ok || got != mk {
		t.Fatalf("parseMarker(%q) = %+v, %v", mk.String(), got, ok)
	}
	for _, bad := range []string{"", "a:b:c:d:e", ":n:f:r:system:l", "i:n:f:r::l", "i:n:f:r:system:"} {
		if _, ok := parseMarker(bad); ok {
			t.Errorf("parseMarker(%q) accepted", bad)
		}
	}
	if instanceID("/a/state") == instanceID("/b/state") || instanceID("/a/state") != instanceID("/a/state/") {
		t.Error("instance ids do not follow the state directory")
	}
}
