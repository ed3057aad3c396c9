package server_test

import (
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/usergraph/usergraph/server"
)

// startingStack is the stack size the runtime gives new goroutines.
func startingStack() uint64 {
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Reserved stacks make the runtime start new goroutines with 8 KiB or more
// (gqlgen's need), where it would start them with the 2–4 KiB a process of
// shallow goroutines averages.
//
// Not parallel: the starting size is the whole process's.
func TestReserveStacks_NewGoroutinesStartBigEnoughForGqlgen(t *testing.T) {
	runtime.GC()
	runtime.GC()
	before := startingStack()
	release := server.ReserveStacks(256)
	defer release()
	runtime.GC()
	runtime.GC()
	if reserved := startingStack(); reserved < 8<<10 || reserved <= before {
		t.Fatalf("new goroutines start with %d bytes of stack with the reserve, %d without; want at least 8 KiB, and more",
			reserved, before)
	}
}
