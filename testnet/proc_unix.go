//go:build unix && !linux

package testnet

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// setChildAttrs puts the child in its own process group, so that stopping
// the testnet can signal the node and anything it spawned at once. Only
// Linux has a parent-death signal; elsewhere a kill -9 of the parent can
// leave nodes running.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalChild sends sig to the child's process group.
func signalChild(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// processCPU is not read here: only Linux's /proc is.
func processCPU(pid int) (time.Duration, error) {
	return 0, errors.ErrUnsupported
}
