//go:build !unix

package pipeline

import "io"

type noLock struct{}

func (noLock) Close() error { return nil }

// The locks are no-ops where flock is not available: do not run two
// processes on one run id there.

func lockDir(string) (io.Closer, error)        { return noLock{}, nil }
func lockDirShared(string) (io.Closer, error)  { return noLock{}, nil }
func lockBatch(string, int) (io.Closer, error) { return noLock{}, nil }
func lockManifest(string) (io.Closer, error)   { return noLock{}, nil }
