//go:build !linux

package testnet

import "time"

var processStart = time.Now()

// wallClock is time since start; inside a synctest bubble on these
// systems it is virtual, so the report's wall time is only right on Linux.
func wallClock() time.Duration { return time.Since(processStart) }

// peakRSS is unknown here.
func peakRSS() int64 { return 0 }
