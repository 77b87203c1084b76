// Package manfile writes the manual pages xpcd --gen-man and xpcctl
// gen-man make, into a directory that may be another user's to write
// (a shared build directory, say, with root running the command): each
// page is written to a new file of a random name in the directory and
// renamed over the page's name, so that a symbolic link or a file planted
// at that name is replaced, never followed or written into.
package manfile

import (
	"os"
	"path/filepath"
)

// Write puts data in dir/name, mode 0644, as the package says.
func Write(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}
