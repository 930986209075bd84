package testnet

import (
	"os"
	"testing"
	"time"
)

// TestProcessCPUCounts checks that processCPU reads this process's own
// CPU time and that it grows as the process works.
func TestProcessCPUCounts(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has counted at least two ticks more.
	sum := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for i := range 1 << 20 {
			sum += i
		}
		now, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now >= before+2*time.Second/userHZ {
			return
		}
	}
	t.Fatalf("CPU time stayed at %v after 5 s of spinning (sum %d)", before, sum)
}

func TestProcessCPUOfMissingProcess(t *testing.T) {
	if _, err := processCPU(1 << 30); err == nil {
		t.Fatal("no error for a pid that cannot exist")
	}
}
