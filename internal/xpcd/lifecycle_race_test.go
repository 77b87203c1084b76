//go:build race

package xpcd

// raceEnabled: the test binary was built with the race detector.
const raceEnabled = true
