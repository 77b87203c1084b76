package polkit

import (
	"encoding/xml"
	"os"
	"testing"
)

// TestPolicyFile: the .policy file shipped declares the action xpcd asks
// about, with an administrator's authentication for everyone, kept for a
// while in an active session.
func TestPolicyFile(t *testing.T) {
	data, err := os.ReadFile("../../contrib/polkit/org.goxpc.xpcd.policy")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		XMLName xml.Name `xml:"policyconfig"`
		Actions []struct {
			ID          string `xml:"id,attr"`
			Description string `xml:"description"`
			Message     string `xml:"message"`
			Defaults    struct {
				Any      string `xml:"allow_any"`
				Inactive string `xml:"allow_inactive"`
				Active   string `xml:"allow_active"`
			} `xml:"defaults"`
		} `xml:"action"`
	}
	if err := xml.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Actions) != 1 {
		t.Fatalf("%d actions, want 1", len(p.Actions))
	}
	a := p.Actions[0]
	if a.ID != ActionApproveDaemon {
		t.Errorf("action %q, want %q", a.ID, ActionApproveDaemon)
	}
	if err := checkRequest(1, 0, a.ID, nil); err != nil {
		t.Errorf("action id: %v", err)
	}
	if a.Description == "" || a.Message == "" {
		t.Error("no description or message")
	}
	d := a.Defaults
	if d.Any != "auth_admin" || d.Inactive != "auth_admin" || d.Active != "auth_admin_keep" {
		t.Errorf("defaults any %q inactive %q active %q; want auth_admin, auth_admin, auth_admin_keep", d.Any, d.Inactive, d.Active)
	}
}
