//go:build race

package testnet

// raceDetector: this binary runs under the race detector (see
// mocknetLatency).
const raceDetector = true
