//go:build linux

package testnet

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// wallClock reads the monotonic clock with a system call. Inside a
// testing/synctest bubble time.Now is virtual; the report's wall time must
// be the host's.
func wallClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// peakRSS is this process's peak resident memory in bytes (0 if unknown).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}
