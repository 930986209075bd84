//go:build race

package testnet

// raceEnabled: the race detector allows at most 8128 live goroutines, and
// a 100-node sim has more.
const raceEnabled = true
