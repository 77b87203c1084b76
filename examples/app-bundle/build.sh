#!/bin/sh
# build.sh OUTDIR: builds the example application bundle
# OUTDIR/Example.app in the Flat layout (docs/APPS.md, "Layout"):
#
#	Example.app/Info.plist                                 org.goxpc.example.app
#	Example.app/bin/app                                    the application
#	Example.app/XPCServices/Helper.xpc/Info.plist          org.goxpc.example.app.helper
#	Example.app/XPCServices/Helper.xpc/helper              the service
#
# The service is an Application one (an instance per running app) that
# joins its application's session (JoinExistingSession).
#
# Run it from anywhere; it needs the go tool. Running
# OUTDIR/Example.app/bin/app needs an xpcd with the pid domain, which
# gives the application its bundled service.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)/Example.app
if [ -e "$out" ]; then
	echo "$0: $out exists; remove it first" >&2
	exit 1
fi

mkdir -p "$out/bin" "$out/XPCServices/Helper.xpc"
cd "$here"
go build -trimpath -o "$out/bin/app" ./app
go build -trimpath -o "$out/XPCServices/Helper.xpc/helper" ./helper

cat >"$out/Info.plist" <<'PLIST'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CFBundleIdentifier</key>
	<string>org.goxpc.example.app</string>
	<key>CFBundleExecutable</key>
	<string>bin/app</string>
	<key>CFBundleVersion</key>
	<string>1.0</string>
</dict>
</plist>
PLIST

cat >"$out/XPCServices/Helper.xpc/Info.plist" <<'PLIST'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>CFBundleIdentifier</key>
	<string>org.goxpc.example.app.helper</string>
	<key>CFBundleExecutable</key>
	<string>helper</string>
	<key>CFBundleVersion</key>
	<string>1.0</string>
	<key>XPCService</key>
	<dict>
		<key>ServiceType</key>
		<string>Application</string>
		<key>IdleExitTimeout</key>
		<integer>10</integer>
		<key>JoinExistingSession</key>
		<true/>
	</dict>
</dict>
</plist>
PLIST

echo "$out"
