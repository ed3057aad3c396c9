package embeddedpg

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// binaries are the server programs Start needs, taken from one directory so
// that initdb and postgres are always the same version.
type binaries struct {
	dir      string
	postgres string
	initdb   string
}

// findBinaries returns the binaries in binDir when it is set, else in the
// first of searchPaths (or the default search paths, when nil) that holds
// both.
func findBinaries(binDir string, searchPaths []string) (binaries, error) {
	if binDir != "" {
		if b, ok := binariesIn(binDir); ok {
			return b, nil
		}
		return binaries{}, fmt.Errorf("%w (BinDir %s lacks postgres or initdb)", ErrNoBinaries, binDir)
	}
	searched := "$PATH and /usr/lib/postgresql/*/bin"
	if searchPaths == nil {
		searchPaths = defaultSearchPaths()
	} else {
		searched = strings.Join(searchPaths, ", ")
	}
	for _, dir := range searchPaths {
		if b, ok := binariesIn(dir); ok {
			return b, nil
		}
	}
	return binaries{}, fmt.Errorf("%w (searched %s)", ErrNoBinaries, searched)
}

func binariesIn(dir string) (binaries, bool) {
	if dir == "" {
		return binaries{}, false
	}
	b := binaries{
		dir:      dir,
		postgres: filepath.Join(dir, "postgres"),
		initdb:   filepath.Join(dir, "initdb"),
	}
	return b, isExecutable(b.postgres) && isExecutable(b.initdb)
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// LookPath finds one of PostgreSQL's programs (pg_basebackup, psql, ...)
// where Start looks for the server's: on $PATH, then in the per-version
// directories Debian installs outside it, newest first.
func LookPath(name string) (string, error) {
	for _, dir := range defaultSearchPaths() {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on $PATH or in /usr/lib/postgresql/*/bin: install PostgreSQL (Debian: apt-get install postgresql)", name)
}

// defaultSearchPaths lists $PATH, then Debian's and Ubuntu's per-version
// directories (which are not on $PATH), newest major version first.
func defaultSearchPaths() []string {
	paths := filepath.SplitList(os.Getenv("PATH"))
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // the pattern is valid, so never an error
	slices.SortStableFunc(versioned, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	return append(paths, versioned...)
}

// compareVersions compares versions such as "9.6" and "15" numerically, so
// that 15 sorts above 9.6. Non-numeric parts compare as zero.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
