//go:build linux

package testnet

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts the child in its own process group, so that stopping
// the testnet can signal the node and anything it spawned at once, and
// asks the kernel to SIGKILL it if this process dies, so that no node
// outlives the command even after kill -9 of the parent.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalChild sends sig to the child's process group.
func signalChild(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}
