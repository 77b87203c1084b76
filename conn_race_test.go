//go:build race

package xpc

// connRace is true when the race detector is on; the heaviest connection
// tests then run smaller.
const connRace = true
