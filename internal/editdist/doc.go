// Package editdist measures how far apart two short strings are, for the
// "did you mean" of a mistyped word: launchd's unknown plist keys and
// xpcctl's unknown commands.
package editdist
