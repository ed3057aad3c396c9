package embeddedpg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// account is the operating system user the server runs as.
type account struct {
	name     string
	uid, gid uint32
	gids     []uint32 // primary and supplementary groups, for permission checks

	// credential is nil when we already are this user, else what the child
	// must switch to.
	credential *syscall.Credential
}

// lookupAccount resolves Config.RunAsUser. PostgreSQL refuses to run as root,
// so root must hand the server to another user, and only root can.
func lookupAccount(name string) (account, error) {
	euid := os.Geteuid()
	if name == "" {
		if euid == 0 {
			name = "postgres"
		} else {
			current, err := user.Current()
			if err != nil {
				return account{}, fmt.Errorf("error looking up the current user: %w", err)
			}
			name = current.Username
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, fmt.Errorf("error looking up RunAsUser %q (Debian's postgresql package creates the user postgres): %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("error parsing uid %q of user %s: %w", u.Uid, name, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("error parsing gid %q of user %s: %w", u.Gid, name, err)
	}
	acct := account{name: name, uid: uint32(uid), gid: uint32(gid), gids: []uint32{uint32(gid)}}

	switch {
	case uid == 0:
		return account{}, fmt.Errorf("RunAsUser %q is root, and PostgreSQL refuses to run as root: name an unprivileged user", name)
	case int(uid) == euid:
		return acct, nil
	case euid != 0:
		return account{}, fmt.Errorf("RunAsUser %q is not the current user, and only root can run the server as another user", name)
	}

	groupIDs, err := u.GroupIds()
	if err != nil {
		return account{}, fmt.Errorf("error looking up the groups of user %s: %w", name, err)
	}
	var supplementary []uint32
	for _, g := range groupIDs {
		id, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return account{}, fmt.Errorf("error parsing group id %q of user %s: %w", g, name, err)
		}
		supplementary = append(supplementary, uint32(id))
		acct.gids = append(acct.gids, uint32(id))
	}
	acct.credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: supplementary}
	return acct, nil
}

// prepareDataDir creates dataDir and, when the server runs as another user,
// hands it over to that user after checking the user can reach it.
// Directories created above it are world-traversable, because the server
// user must pass through them.
func prepareDataDir(dataDir string, acct account) error {
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return fmt.Errorf("error creating the parent of DataDir: %w", err)
	}
	// initdb and postgres insist on 0700 or 0750.
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("error creating DataDir: %w", err)
	}
	if acct.credential == nil {
		return nil
	}
	if err := checkTraversable(filepath.Dir(dataDir), acct); err != nil {
		return err
	}
	return chownTree(dataDir, acct)
}

// checkTraversable reports the first directory from dir up to the root that
// acct may not pass through. Without this check the server fails with a bare
// "permission denied" on a path that names no culprit. POSIX ACLs are not
// considered.
func checkTraversable(dir string, acct account) error {
	for {
		info, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("error checking access to %s: %w", dir, err)
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := info.Mode().Perm()
		var canSearch bool
		switch {
		case st.Uid == acct.uid:
			canSearch = perm&0o100 != 0
		case slices.Contains(acct.gids, st.Gid):
			canSearch = perm&0o010 != 0
		default:
			canSearch = perm&0o001 != 0
		}
		if !canSearch {
			return fmt.Errorf("directory %s (mode %v, owner uid %d) is not traversable by user %s, who runs PostgreSQL: chmod o+x it or choose another DataDir", dir, perm, st.Uid, acct.name)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// chownTree hands dataDir and everything in it to acct. It runs at every
// start, because files written while the server ran as another user (say, an
// earlier run without root) would otherwise be unreadable to it.
func chownTree(dataDir string, acct account) error {
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid == acct.uid && st.Gid == acct.gid {
			return nil
		}
		return os.Lchown(path, int(acct.uid), int(acct.gid))
	})
	if err != nil {
		return fmt.Errorf("error handing DataDir %s to user %s: %w", dataDir, acct.name, err)
	}
	return nil
}
