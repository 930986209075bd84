//go:build !race

package testnet

// raceDetector reports whether this binary runs under the race detector.
const raceDetector = false
