package embeddedpg

import "syscall"

// sysProcAttr puts the child in its own process group, so that a Ctrl-C in
// the terminal reaches only us and our orderly Stop is not raced by the
// server's own reaction to SIGINT, and makes the kernel send it deathSignal
// when we die, so that no orphaned server keeps the data directory locked.
//
// Linux clears the parent-death signal when the process changes its user or
// group IDs. That does not bite here: Go's forkAndExecInChild1 sets
// credentials first and the parent-death signal after them, and postgres is
// not a set-user-ID binary (exec of one would clear it too).
func sysProcAttr(credential *syscall.Credential, deathSignal syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  deathSignal,
		Credential: credential,
	}
}
