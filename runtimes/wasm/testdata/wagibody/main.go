// Command wagibody is a WAGI module for the provider's tests that answers
// the way wagi-dotnet's env_wagi does: it writes its headers and the start
// of its body (16 KiB, more than the server buffers before it sends the
// response's head), and only then reads the request body, whose length it
// writes last.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	fmt.Print("Content-Type: text/plain\n\n")
	fmt.Print("reading the request body\n")
	fmt.Print(strings.Repeat("0123456789abcde\n", 1024))
	n, err := io.Copy(io.Discard, os.Stdin)
	fmt.Printf("read %d bytes, error %v\n", n, err)
}
