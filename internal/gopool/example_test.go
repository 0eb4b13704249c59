package gopool_test

import (
	"fmt"

	"github.com/fungi-go/fungi/internal/gopool"
)

// A bridge runs one direction of a connection on a pooled goroutine and
// the other on its own.
func ExampleGo() {
	done := make(chan string)
	gopool.Go(func() { done <- "upload copied" })
	fmt.Println(<-done)
	// Output: upload copied
}
