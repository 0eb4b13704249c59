package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
)

// completionCmd prints a shell's completion script. The scripts ask
// `fungi __complete` for the words, so commands, flags, service names,
// device aliases and peer IDs come from this binary and the running daemon.
type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

const bashCompletion = `# fungi completion for bash: source <(fungi completion bash)
_fungi() {
  local IFS=$'\n'
  COMPREPLY=($(fungi __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _fungi fungi
`

const zshCompletion = `#compdef fungi
# fungi completion for zsh: source <(fungi completion zsh)
_fungi() {
  local -a candidates
  candidates=("${(@f)$(fungi __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _fungi fungi
`

const fishCompletion = `# fungi completion for fish: fungi completion fish | source
complete -c fungi -f -a '(fungi __complete -- (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`

func (c *completionCmd) Run(e *env) error {
	script := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}[c.Shell]
	_, err := fmt.Fprint(e.stdout, script)
	return err
}

// completeCmd answers the completion scripts: the words typed after
// `fungi`, the last one being completed (maybe empty); it prints one
// candidate a line.
type completeCmd struct {
	Words []string `arg:"" optional:"" passthrough:""`
}

// completeDaemonTimeout bounds what completion asks the daemon: a shell
// waiting on TAB must not hang.
const completeDaemonTimeout = 2 * time.Second

func (c *completeCmd) Run(e *env) error {
	var cl cli
	parser, err := kong.New(&cl, kong.Name("fungi"))
	if err != nil {
		return err
	}
	words := c.Words
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	node := parser.Model.Node
	var pending *kong.Flag // a flag whose value is being typed
	positional := 0
	dir, peer := "", ""
	for _, w := range legacyDirFlag(words[:len(words)-1]) {
		if pending != nil {
			switch pending.Name {
			case "fungi-dir":
				dir = w
			case "peer":
				peer = w
			}
			pending = nil
			continue
		}
		if strings.HasPrefix(w, "-") {
			name, value, hasValue := strings.Cut(w, "=")
			f := findFlag(node, name)
			if f != nil && !f.IsBool() && !hasValue {
				pending = f
			}
			if f != nil && hasValue && f.Name == "peer" {
				peer = value
			}
			continue
		}
		if child := findChild(node, w); child != nil {
			node, positional = child, 0
			continue
		}
		positional++
	}
	if dir != "" {
		if h, err := home.Open(dir); err == nil {
			e.home = h
		}
	}
	var candidates []string
	switch {
	case pending != nil:
		if pending.Name == "peer" {
			candidates = e.completeDevices()
		}
	case strings.HasPrefix(cur, "-"):
		for n := node; n != nil; n = n.Parent {
			for _, f := range n.Flags {
				if !f.Hidden {
					candidates = append(candidates, "--"+f.Name)
				}
			}
		}
	default:
		for _, child := range node.Children {
			if !child.Hidden {
				candidates = append(candidates, child.Name)
			}
		}
		if positional < len(node.Positional) {
			switch node.Positional[positional].Name {
			case "name":
				if underPeerAdmin(node) {
					candidates = append(candidates, e.completeRemoteServices(peer)...)
				} else {
					candidates = append(candidates, e.completeServices()...)
				}
			case "device":
				candidates = append(candidates, e.completeDevices()...)
			case "service-id":
				candidates = append(candidates, e.completeCatalog(peer)...)
			}
		}
	}
	sort.Strings(candidates)
	for _, s := range candidates {
		if strings.HasPrefix(s, cur) && !strings.ContainsAny(s, "\n\r") {
			fmt.Fprintln(e.stdout, terminalSafe(s))
		}
	}
	return nil
}

// underPeerAdmin reports whether n is a command of `fungi peer admin`,
// whose service names are the target peer's.
func underPeerAdmin(n *kong.Node) bool {
	for ; n != nil && n.Parent != nil; n = n.Parent {
		if n.Name == "admin" && n.Parent.Name == "peer" {
			return true
		}
	}
	return false
}

func findChild(n *kong.Node, name string) *kong.Node {
	for _, c := range n.Children {
		if c.Name == name || contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

func findFlag(n *kong.Node, word string) *kong.Flag {
	for ; n != nil; n = n.Parent {
		for _, f := range n.Flags {
			if word == "--"+f.Name || (f.Short != 0 && word == "-"+string(f.Short)) {
				return f
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// completeServices lists this node's services; nothing when no daemon
// answers in time.
func (e *env) completeServices() []string {
	var out []string
	e.completeWithDaemon(func(ctx context.Context, d *daemonClient) {
		if res, err := d.List(ctx, &messages.ListServicesRequest{}); err == nil {
			for _, s := range res.Services {
				out = append(out, s.Name)
			}
		}
	})
	return out
}

// completeRemoteServices lists the services of device (alias or peer ID;
// "" is the `peer use` target), asked through the daemon; nothing when the
// daemon or the peer does not answer within completeDaemonTimeout.
func (e *env) completeRemoteServices(device string) []string {
	req := &messages.Envelope{Body: &messages.Envelope_List{List: &messages.ListServicesRequest{}}}
	return e.completeRemote(device, req, func(env *messages.Envelope) (out []string) {
		for _, s := range env.GetServices().GetServices() {
			out = append(out, s.Name)
		}
		return out
	})
}

// completeCatalog lists the service IDs device publishes (`access attach
// <TAB>`), as `fungi catalog list` shows them.
func (e *env) completeCatalog(device string) []string {
	req := &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}
	return e.completeRemote(device, req, func(env *messages.Envelope) (out []string) {
		for _, s := range env.GetCatalogList().GetServices() {
			out = append(out, s.ServiceId)
		}
		return out
	})
}

// completeRemote asks device (alias or peer ID; "" is the `peer use`
// target) req through the daemon and reads names from its first answer;
// nothing when the daemon or the peer does not answer within
// completeDaemonTimeout.
func (e *env) completeRemote(device string, req *messages.Envelope, names func(*messages.Envelope) []string) []string {
	var out []string
	e.completeWithDaemon(func(ctx context.Context, d *daemonClient) {
		dev, err := d.ResolveDevice(ctx, &messages.DeviceResolve{Device: device})
		if err != nil {
			return
		}
		stream, err := d.Remote(ctx, &messages.RemoteRequest{Device: dev.PeerId, Request: req})
		if err != nil {
			return
		}
		env, err := stream.Recv()
		if err != nil {
			return
		}
		out = names(env)
	})
	return out
}

// completeDevices lists the address book's aliases and peer IDs.
func (e *env) completeDevices() []string {
	var out []string
	e.completeWithDaemon(func(ctx context.Context, d *daemonClient) {
		if res, err := d.ListDevices(ctx, &messages.DeviceListRequest{}); err == nil {
			for _, dev := range res.Devices {
				if dev.Alias != "" {
					out = append(out, dev.Alias)
				}
				out = append(out, dev.PeerId)
			}
		}
	})
	return out
}

func (e *env) completeWithDaemon(f func(ctx context.Context, d *daemonClient)) {
	if _, err := os.Stat(e.home.SocketPath()); err != nil {
		return
	}
	d, err := e.connect()
	if err != nil {
		return
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), completeDaemonTimeout)
	defer cancel()
	f(ctx, d)
}
