//go:build unix && !linux

package embeddedpg

import "syscall"

// sysProcAttr puts the child in its own process group, so that a Ctrl-C in
// the terminal reaches only us and our orderly Stop is not raced by the
// server's own reaction to SIGINT. Only Linux offers a parent-death signal:
// elsewhere a server whose parent is killed keeps running until stopped by
// hand.
func sysProcAttr(credential *syscall.Credential, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: credential,
	}
}
