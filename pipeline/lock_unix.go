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
	path := filepath.Join(dir, "lock")
	// O_NOFOLLOW: a link planted at the lock's path is refused, not followed.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock run directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("run directory %s is in use by another sfmigrate process; wait for it to finish (or stop it) and rerun", dir)
		}
		return nil, fmt.Errorf("lock run directory %s: %w", dir, err)
	}
	return f, nil
}
