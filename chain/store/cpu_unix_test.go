//go:build unix

package store

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time the process has used, all
// goroutines (Badger's flushers and compactors included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
