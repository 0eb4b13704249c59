// Command fungi is the Fungi node and its command line: `fungi daemon` runs
// a node, every other command talks to the node of its --fungi-dir over the
// Unix socket there.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/version"
)

// cli is the whole command tree; each group lives in its own file.
type cli struct {
	FungiDir string           `short:"C" name:"fungi-dir" env:"FUNGI_DIR" placeholder:"DIR" help:"Node folder (default ~/.fungi)."`
	Version  kong.VersionFlag `name:"version" help:"Print the version and exit."`

	Init       initCmd       `cmd:"" help:"Create the node folder: identity key and default config."`
	Daemon     daemonCmd     `cmd:"" help:"Run the node in the foreground (fungi daemon [--listen …]); stop, restart, install it."`
	Info       infoCmd       `cmd:"" help:"Show this node's peer ID, addresses, version and runtimes."`
	Status     statusCmd     `cmd:"" help:"One screen: node, runtimes, services by state, devices online, access entries."`
	Service    serviceCmd    `cmd:"" help:"Pull, run and inspect services on this node."`
	Run        runCmd        `cmd:"" help:"Run a .wasm file or a container image here in one line: a job in the foreground (its exit code is fungi's), a server with its URL."`
	Device     deviceCmd     `cmd:"" help:"The address book: devices, aliases, trust."`
	Peer       peerCmd       `cmd:"" help:"Target a peer; administer its services."`
	Catalog    catalogCmd    `cmd:"" help:"What a peer publishes."`
	Access     accessCmd     `cmd:"" help:"Local ports forwarded to peers' services."`
	Ping       pingCmd       `cmd:"" help:"Measure the round trip to a device."`
	Connection connectionCmd `cmd:"" help:"Open connections to peers."`
	UI         uiCmd         `cmd:"" name:"ui" help:"Open the web dashboard in a browser (prints a one-time login link)."`
	Relay      relayCmd      `cmd:"" help:"Run a circuit-relay server for nodes behind NAT; add, remove, list the relays this node uses."`
	Config     configCmd     `cmd:"" help:"Read and set config.yaml keys; the running daemon applies what it can at once."`
	Mounts     mountsCmd     `cmd:"" help:"Host folders manifests may mount (mounts.allowed)."`
	Completion completionCmd `cmd:"" help:"Print the shell completion script: source <(fungi completion bash), zsh likewise, fish: fungi completion fish | source."`
	Complete   completeCmd   `cmd:"" name:"__complete" hidden:"" help:"Answer the completion scripts."`
	VersionCmd versionCmd    `cmd:"" name:"version" help:"Print this binary's version, Go version, OS and architecture."`
}

// env is what every command gets: where the node lives and where to write.
type env struct {
	home   *home.Home
	stdout io.Writer
	stderr io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the command and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("fungi"),
		kong.Description("A private peer-to-peer network for your own devices."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Vars{"version": version.Version},
		kong.Exit(func(code int) { panic(exitCode(code)) }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "fungi:", err)
		return 2
	}
	code := 0
	func() {
		defer func() {
			if r := recover(); r != nil {
				if c, ok := r.(exitCode); ok {
					code = int(c)
					return
				}
				panic(r)
			}
		}()
		if len(args) == 0 {
			// A bare `fungi` is a new user's first try: the full usage.
			args = []string{"--help"}
		}
		if args[0] == "help" {
			// `fungi help [COMMAND…]` is `fungi [COMMAND…] --help`, as with git and docker.
			args = append(append([]string(nil), args[1:]...), "--help")
		}
		kctx, err := parse(parser, legacyDirFlag(args))
		if groupHelp(kctx, err, stdout) {
			return
		}
		if err != nil {
			fmt.Fprintf(stderr, "fungi: %v\n", err)
			code = 2
			return
		}
		dir := c.FungiDir
		if dir == "" {
			dir = home.Default()
		}
		h, err := home.Open(dir)
		if err != nil {
			fmt.Fprintln(stderr, "fungi:", err)
			code = 1
			return
		}
		if err := runCommand(kctx, &c, &env{home: h, stdout: stdout, stderr: stderr}); err != nil {
			code = 1
			var je *jobExitError
			if errors.As(err, &je) {
				// A job's exit code is the command's, as with docker run.
				code = je.code
			}
			fmt.Fprintln(stderr, "fungi:", message(err))
		}
	}()
	return code
}

type exitCode int

// groupHelp prints a command group's help for `fungi service` and the like
// typed alone, and says whether it did: a group alone asks what it holds.
func groupHelp(kctx *kong.Context, err error, stdout io.Writer) bool {
	if err == nil || kctx == nil || !strings.HasPrefix(err.Error(), "expected ") {
		return false
	}
	node := kctx.Selected()
	if node == nil || len(node.Children) == 0 || len(kctx.Args) == 0 || kctx.Args[len(kctx.Args)-1] != node.Name {
		return false
	}
	kctx.Stdout = stdout
	return kctx.PrintUsage(false) == nil
}

// legacyDirFlag reads `-f DIR` before the command word as --fungi-dir, as
// fungi before 0.2 did: units written by `daemon install` and scripts keep
// working. Anywhere else -f is --follow (logs), as with docker and tail;
// the documented short flag for the folder is -C.
func legacyDirFlag(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i < len(out) && strings.HasPrefix(out[i], "-"); i++ {
		switch out[i] {
		case "-f":
			out[i] = "--fungi-dir"
			i++ // its value
		case "-C", "--fungi-dir":
			i++
		}
	}
	return out
}

// message is the text of an error, without gRPC's "rpc error: code = …".
func message(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Message()
	}
	return err.Error()
}
