package launchd_test

import (
	"fmt"
	"time"

	"github.com/goxpc/xpc/launchd"
)

func ExampleParse() {
	job, err := launchd.Parse("com.example.helper.plist", []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>com.example.helper</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/libexec/example-helper</string>
		<string>--verbose</string>
	</array>
	<key>MachServices</key>
	<dict>
		<key>com.example.helper</key>
		<true/>
	</dict>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>XPCIdleExitTimeout</key>
	<integer>30</integer>
	<key>Sockets</key>
	<dict/>
</dict>
</plist>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(job.Label, job.Argv())
	fmt.Println("throttle:", job.ThrottleInterval, "idle exit:", job.IdleExitTimeout)
	fmt.Println("starts at load:", job.StartsAtLoad())
	fmt.Println("restart after a failure:", job.KeepAlive.ShouldRestart(false, false))
	for _, w := range job.Warnings {
		fmt.Println("warning:", w)
	}
	// Output:
	// com.example.helper [/usr/libexec/example-helper --verbose]
	// throttle: 10s idle exit: 30s
	// starts at load: true
	// restart after a failure: true
	// warning: Sockets: supported by launchd but not by goxpc: ignored
}

func ExampleParse_errors() {
	_, err := launchd.Parse("/etc/xpcd/LaunchDaemons/com.example.foo.plist", []byte(`<plist version="1.0"><dict>
	<key>Label</key><string>com.example.foo</string>
	<key>Program</key><string>foo</string>
	<key>KeepAlive</key><dict><key>SuccessfulExit</key><string>no</string></dict>
</dict></plist>`))
	for _, e := range launchd.Errors(err) {
		fmt.Println(e)
	}
	// Output:
	// /etc/xpcd/LaunchDaemons/com.example.foo.plist: KeepAlive.SuccessfulExit: want bool, have string
	// /etc/xpcd/LaunchDaemons/com.example.foo.plist: Program: must be an absolute path, have "foo"
}

func ExampleCalendarInterval_Next() {
	sunday := 7
	noon := 12
	zero := 0
	c := launchd.CalendarInterval{Weekday: &sunday, Hour: &noon, Minute: &zero}
	after := time.Date(2024, 3, 10, 13, 0, 0, 0, time.UTC) // a Sunday, past noon
	fmt.Println(c, "->", c.Next(after).Format(time.RFC1123))
	// Output:
	// 0 12 * * 7 -> Sun, 17 Mar 2024 12:00:00 UTC
}
