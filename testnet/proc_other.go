//go:build !unix

package testnet

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// setChildAttrs does nothing where there are no process groups.
func setChildAttrs(cmd *exec.Cmd) {}

// signalChild kills the child: without Unix signals there is no graceful
// stop to ask for.
func signalChild(cmd *exec.Cmd, sig syscall.Signal) error {
	return cmd.Process.Kill()
}

// processCPU is not read here: only Linux's /proc is.
func processCPU(pid int) (time.Duration, error) {
	return 0, errors.ErrUnsupported
}
