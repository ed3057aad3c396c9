package embeddedpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// postmaster is a running server process, reaped by its own goroutine.
type postmaster struct {
	// process is signalled through Go's pidfd-backed handle, which cannot
	// reach an unrelated process that reused the pid after ours was reaped.
	process *os.Process
	pid     int
	exited  chan struct{} // closed once the process has been reaped
	err     error         // the exit status; read only after exited is closed
}

// startPostmaster starts cmd and reaps it in the background.
//
// The parent-death signal that stops the server when we die is tied by Linux
// to the thread that forked the child, not to our process: if that thread
// exits, the server is signalled although we are alive. The Go runtime ends a
// thread when a goroutine that locked it exits without unlocking, which any
// library may do. So the fork happens on a thread locked by the goroutine that
// also waits for the child, and no other goroutine can lock (and end) it
// before the child is gone.
func startPostmaster(cmd *exec.Cmd) (*postmaster, error) {
	p := &postmaster{exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.process, p.pid = cmd.Process, cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// stop asks the postmaster for a fast shutdown and waits for it to exit. The
// postmaster alone gets the signal, because it coordinates the shutdown of
// its children. If ctx ends first, the whole process group (Setpgid made it
// the postmaster's pid) is killed, which leaves the data consistent but makes
// the next start run crash recovery.
func (p *postmaster) stop(ctx context.Context) error {
	if err := p.process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("error signalling the postmaster: %w", err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("postmaster exited with %w", p.err)
		}
		return nil
	case <-ctx.Done():
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("postmaster did not shut down in time, killed it: %w", ctx.Err())
	}
}

// runOnLockedThread runs a short-lived child to completion and returns its
// combined output, keeping the forking thread alive for the child's whole
// life for the reason given on startPostmaster.
func runOnLockedThread(cmd *exec.Cmd) ([]byte, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	return out, nil
}
