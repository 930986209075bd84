//go:build !unix

package testnet

import (
	"os/exec"
	"syscall"
)

// setChildAttrs does nothing where there are no process groups.
func setChildAttrs(cmd *exec.Cmd) {}

// signalChild kills the child: without Unix signals there is no graceful
// stop to ask for.
func signalChild(cmd *exec.Cmd, sig syscall.Signal) error {
	return cmd.Process.Kill()
}
