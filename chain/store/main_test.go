package store

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: Close
// must stop everything Badger started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
