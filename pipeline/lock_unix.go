//go:build unix

package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock on dir/lock. The kernel
// drops it when the process dies (even on kill -9), so a crashed run never
// leaves a stale lock behind.
func lockDir(dir string) (io.Closer, error) {
	return flockFile(filepath.Join(dir, "lock"), syscall.LOCK_EX|syscall.LOCK_NB,
		fmt.Sprintf("run directory %s is in use by another sfmigrate process; wait for it to finish (or stop it) and rerun", dir))
}

// lockDirShared takes a shared, non-blocking flock on dir/lock: any number
// of mapped uploads (`task upload --batch N`) hold it together, and none of
// them while a process holds the exclusive lock (lockDir).
func lockDirShared(dir string) (io.Closer, error) {
	return flockFile(filepath.Join(dir, "lock"), syscall.LOCK_SH|syscall.LOCK_NB,
		fmt.Sprintf("run directory %s is in use by a step of the whole run (another sfmigrate process); mapped uploads run once it has finished: wait and rerun", dir))
}

// lockBatch takes an exclusive, non-blocking flock on one batch's lock
// file, so a batch has at most one uploader.
func lockBatch(dir string, batch int) (io.Closer, error) {
	return flockFile(filepath.Join(dir, fmt.Sprintf("lock.batch-%d", batch)), syscall.LOCK_EX|syscall.LOCK_NB,
		fmt.Sprintf("batch %d of run directory %s is being uploaded by another sfmigrate process; wait for it to finish (or stop it) and rerun", batch, dir))
}

// lockManifest takes an exclusive flock on dir/lock.manifest, waiting for
// it: mapped uploads hold it around each read-change-write of the
// manifest, which takes milliseconds.
func lockManifest(dir string) (io.Closer, error) {
	return flockFile(filepath.Join(dir, "lock.manifest"), syscall.LOCK_EX, "")
}

// flockFile opens path (creating it) and flocks it with how. busy is the
// error text when a non-blocking lock is held elsewhere.
func flockFile(path string, how int, busy string) (io.Closer, error) {
	// O_NOFOLLOW: a link planted at the lock's path is refused, not followed.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock run directory: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) && busy != "" {
			return nil, errors.New(busy)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
