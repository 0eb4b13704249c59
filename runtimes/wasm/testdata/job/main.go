// Command job is a WASI preview 1 command module for the provider's job
// tests: it reads its standard input, reads a read-only mount at /ro and
// tries to change it, writes into /rw, and exits with $EXIT_CODE.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	fmt.Printf("stdin: %q %v\n", in, err)
	fmt.Fprintln(os.Stderr, "a line on stderr")
	if b, err := os.ReadFile("/ro/in.txt"); err == nil {
		fmt.Printf("read-only mount holds: %q\n", b)
	} else {
		fmt.Printf("read-only mount: %v\n", err)
	}
	for what, try := range map[string]func() error{
		"create": func() error { return os.WriteFile("/ro/new.txt", []byte("x"), 0o644) },
		"write":  func() error { return os.WriteFile("/ro/in.txt", []byte("x"), 0o644) },
		"mkdir":  func() error { return os.Mkdir("/ro/dir", 0o755) },
		"remove": func() error { return os.Remove("/ro/in.txt") },
	} {
		fmt.Printf("read-only %s: %v\n", what, try())
	}
	if err := os.WriteFile("/rw/out.txt", append([]byte("got "), in...), 0o644); err != nil {
		fmt.Printf("write /rw/out.txt: %v\n", err)
	}
	code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
	os.Exit(code)
}
