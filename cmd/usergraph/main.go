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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().Run(ctx, os.Args); err != nil {
		// One line, no stack trace: configuration and start-up errors are
		// written for the operator.
		fmt.Fprintln(os.Stderr, "usergraph:", err)
		os.Exit(1)
	}
}
