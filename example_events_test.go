package xpc_test

import (
	"context"
	"log"

	"github.com/goxpc/xpc"
	"github.com/goxpc/xpc/launchd"
)

// A job whose plist declares
//
//	<key>LaunchEvents</key>
//	<dict>
//	  <key>com.apple.notifyd.matching</key>
//	  <dict>
//	    <key>config-changed</key>
//	    <dict><key>Notification</key><string>com.example.config.changed</string></dict>
//	  </dict>
//	</dict>
//
// is launched by xpcd when com.example.config.changed is posted, and
// handles the event (and those that come while it runs) like this.
func ExampleService_HandleEvents() {
	ctx := context.Background()
	svc, err := xpc.CheckIn(ctx)
	if err != nil {
		log.Fatal(err) // not launched by xpcd
	}
	defer svc.Close()
	err = svc.HandleEvents(ctx, launchd.StreamNotify, func(ctx context.Context, ev *xpc.Event) {
		name, _ := ev.Payload.String(launchd.NotificationKey)
		state, _ := ev.Payload.Uint64("State")
		log.Printf("event %d (%s): %s posted, state %d", ev.ID, ev.Name, name, state)
		// Returning acknowledges the event: xpcd forgets it.
	})
	if err != nil {
		log.Fatal(err)
	}
	<-svc.Terminating()
}
