package server

import "sync"

// DefaultStackReserve is how many goroutines usergraph serve parks with
// ReserveStacks unless told otherwise.
const DefaultStackReserve = 256

// ReserveStacks parks n goroutines for the life of the process (or until
// release), each holding about 24 KiB of stack in use, so that the Go
// runtime starts new goroutines with stacks big enough for gqlgen's.
//
// Why: since Go 1.19 the runtime starts each goroutine with a stack the
// size of the average it found in use at the last garbage collection
// (adaptive stack start). Between requests most goroutines are shallow, so
// that is 2–4 KiB. gqlgen runs every list element and resolver field in a
// goroutine of its own whose calls need 8–16 KiB: each grew its stack two
// or three times, copying it each time, and runtime.copystack was the
// largest single item of a 50-user page's CPU profile. The parked stacks
// raise the average (the runtime/metrics value /gc/stack/starting-size:bytes
// shows the result): with 256 of them, gqlgen's executor alone runs
// BenchmarkExecutorFloor's Q1 for about 40% less CPU and Q2 for 25% less.
// The price is the parked stacks (about 8 MiB for 256) and larger stacks
// for every new goroutine, which the garbage collector shrinks again when
// they turn out too big. Many more goroutines than these, idle
// connections say, dilute the average back down: then it simply helps
// less.
//
// It returns once every goroutine is parked at full depth, so that the
// next garbage collection already counts their stacks.
func ReserveStacks(n int) (release func()) {
	done := make(chan struct{})
	var wg, parked sync.WaitGroup
	for range n {
		wg.Add(1)
		parked.Add(1)
		go func() {
			defer wg.Done()
			parkDeep(stackFrames, parked.Done, done)
		}()
	}
	parked.Wait()
	return func() {
		close(done)
		wg.Wait()
	}
}

// stackFrames of parkDeep's 512 bytes each are about 24 KiB of stack.
const stackFrames = 40

// parkDeep recurses n frames deep, says so, then waits for done.
//
//go:noinline
func parkDeep(n int, parked func(), done <-chan struct{}) byte {
	var frame [512]byte
	frame[n%len(frame)] = byte(n)
	if n == 0 {
		parked()
		<-done
		return frame[0]
	}
	return parkDeep(n-1, parked, done) + frame[n%len(frame)]
}
