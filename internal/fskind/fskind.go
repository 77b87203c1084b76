// Package fskind names the type of a file that is not the regular file
// a reader wanted, for its errors.
package fskind

import "io/fs"

// Of names m's file type: "a directory", "a FIFO", "a socket", "a
// character device", "a block device", or what fs.FileMode says.
func Of(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return m.Type().String()
}
