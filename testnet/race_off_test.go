//go:build !race

package testnet

// raceEnabled reports whether the test binary runs under the race detector.
const raceEnabled = false
