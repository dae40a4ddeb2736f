//go:build !linux

package funchost

import (
	"os"
	"os/exec"
)

func configureProcess(cmd *exec.Cmd) {}

func signalProcess(cmd *exec.Cmd, kill bool) {
	if cmd.Process == nil {
		return
	}
	if kill || cmd.Process.Signal(os.Interrupt) != nil {
		_ = cmd.Process.Kill()
	}
}
