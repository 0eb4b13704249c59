// Package gopool starts tasks on goroutines kept from earlier tasks, so
// that a task begins on a stack that has already grown.
//
// A goroutine starts on a small stack and copies it to a larger one each
// time a call goes deeper than it holds; a bridged connection's goroutines
// (an accept, a TLS write through yamux, a reply's read) grow theirs two
// or three times, on the path of the connection's first bytes. A goroutine
// that goes back to the pool keeps its stack until the garbage collector
// shrinks it, so the next connection's task starts with room to run.
// A panic's traceback names gopool's worker as the goroutine's creator,
// not the code that called Go.
package gopool

import "sync"

// maxIdle bounds the goroutines waiting for a task; one that finishes a
// task while as many wait ends instead.
const maxIdle = 64

var pool struct {
	mu   sync.Mutex
	idle []chan func() // the last one to finish is the first reused: its stack is the warmest
}

// Go runs fn on a waiting goroutine, or on a new one when none waits. As
// with a go statement, fn runs concurrently and a panic in it ends the
// process.
func Go(fn func()) {
	pool.mu.Lock()
	if n := len(pool.idle); n > 0 {
		next := pool.idle[n-1]
		pool.idle = pool.idle[:n-1]
		pool.mu.Unlock()
		next <- fn // buffered: never blocks
		return
	}
	pool.mu.Unlock()
	go work(fn)
}

// work runs fn, then waits for the next task unless enough goroutines
// already wait.
func work(fn func()) {
	next := make(chan func(), 1)
	for {
		fn()
		fn = nil // what fn held is not kept alive while waiting
		pool.mu.Lock()
		if len(pool.idle) >= maxIdle {
			pool.mu.Unlock()
			return
		}
		pool.idle = append(pool.idle, next)
		pool.mu.Unlock()
		fn = <-next
	}
}

// Idle is how many goroutines wait for a task: a test that counts the
// process's goroutines against a baseline leaves these out.
func Idle() int {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return len(pool.idle)
}
