package embeddedpg

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is what the postmaster records in <DataDir>/postmaster.pid: its
// pid, and from PostgreSQL 10 on, on the eighth line, whether it is ready.
type lockFile struct {
	pid    int
	status string
}

func readLockFile(dataDir string) (lockFile, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return lockFile{}, err
	}
	lines := strings.Split(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return lockFile{}, fmt.Errorf("error parsing pid in postmaster.pid: %w", err)
	}
	lock := lockFile{pid: pid}
	if len(lines) > 7 {
		lock.status = strings.TrimSpace(lines[7])
	}
	return lock, nil
}

// removeStaleLock deletes a postmaster.pid left by a server that was killed,
// when its pid now belongs to another program. PostgreSQL clears a stale lock
// itself when the pid is free or owned by another user, but takes a live
// process of the same user for a running server and refuses to start. That
// is common after a reboot or a container restart, when pids are handed out
// again from the same small numbers.
//
// The lock is only removed when the process is certainly not a postmaster (a
// different program, or a zombie), since removing a live server's lock would
// let two servers corrupt one data directory.
func removeStaleLock(dataDir string, logger *slog.Logger) error {
	lock, err := readLockFile(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", lock.pid))
	if err != nil {
		// The process is gone (PostgreSQL handles that), or there is no
		// /proc to ask and PostgreSQL's judgement must do.
		return nil
	}
	// /proc/<pid>/stat reads "<pid> (<command>) <state> ..."; the command
	// may itself contain parentheses and spaces.
	open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || closing < open {
		return nil
	}
	command := string(stat[open+1 : closing])
	state := strings.Fields(string(stat[closing+1:]))
	zombie := len(state) > 0 && (state[0] == "Z" || state[0] == "X")
	if (command == "postgres" || command == "postmaster") && !zombie {
		return nil
	}
	logger.Info("removing stale postmaster.pid: its pid now belongs to another program",
		"pid", lock.pid, "command", command, "data_dir", dataDir)
	if err := os.Remove(filepath.Join(dataDir, "postmaster.pid")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("error removing stale postmaster.pid: %w", err)
	}
	return nil
}
