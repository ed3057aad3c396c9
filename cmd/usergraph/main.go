// Command usergraph is the Usergraph server and its tools: serve the API,
// apply migrations, and bulk-load demo data.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is the build's version: the module version from the build
// information, or "dev" for a local build.
var version = func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}()

// defaultGOGC is the collector's target when the GOGC environment variable
// is unset: 200, twice Go's default. A GraphQL response is built from many
// short-lived objects, so at 100 the collector runs several times a second
// under load and costs a sixth of a page's CPU; 200 halves that for a heap
// that may reach three times the live data, which in this server is small
// (a few tens of MiB, more only while password hashes are in progress).
// GOGC and GOMEMLIMIT set by the operator win.
const defaultGOGC = 200

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGOGC)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().Run(ctx, os.Args); err != nil {
		// One line, no stack trace: configuration and start-up errors are
		// written for the operator.
		fmt.Fprintln(os.Stderr, "usergraph:", err)
		os.Exit(1)
	}
}
