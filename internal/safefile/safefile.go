// Package safefile writes files where a link planted by someone else is
// refused, never followed: the files sfmigrate writes hold source rows, and
// a link in the run's directories could send them (or a truncation)
// anywhere the user may write.
package safefile

import (
	"errors"
	"fmt"
	"os"
)

// ErrLink is wrapped by the errors about a symbolic link (or another
// non-file) found where sfmigrate writes.
var ErrLink = errors.New("is a symbolic link or not a regular file")

// RefuseLink returns an error when path exists and is not a regular file.
func RefuseLink(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %w (%s): it was not made by sfmigrate and is not written through; remove it", path, ErrLink, fi.Mode().Type())
	}
	return nil
}

// RefuseDirLink returns an error when dir exists and is a link or not a
// directory.
func RefuseDirLink(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("directory %s %w (%s): it was not made by sfmigrate and is not written through; remove it", dir, ErrLink, fi.Mode().Type())
	}
	return nil
}

// CreateNew creates path for writing with mode 0600, replacing a leftover
// of an interrupted attempt but never writing through a link: the old
// entry (file or link) is removed, and O_EXCL refuses whatever appears at
// path in between.
func CreateNew(path string) (*os.File, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}
