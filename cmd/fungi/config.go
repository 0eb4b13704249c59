package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/messages"
)

// configCmd reads and edits config.yaml; the running daemon applies what it
// can at once.
type configCmd struct {
	Get    configGetCmd    `cmd:"" help:"Print a config.yaml key (every key without one)."`
	Set    configSetCmd    `cmd:"" help:"Set a config.yaml key; the running daemon applies it, or says it needs a restart."`
	Reload configReloadCmd `cmd:"" help:"Have the running daemon read config.yaml again (as SIGHUP does)."`
}

type configGetCmd struct {
	jsonFlag
	Key string `arg:"" optional:"" help:"A key such as mdns or mounts.allowed."`
}

// configValue is one key in --json output.
type configValue struct {
	Key   string   `json:"key"`
	Value []string `json:"value"`
	// Live says the running daemon applies a change without a restart.
	Live bool `json:"live"`
}

func (c *configGetCmd) Run(e *env) error {
	keys := config.Keys
	if c.Key != "" {
		k, err := config.Lookup(c.Key)
		if err != nil {
			return err
		}
		keys = []config.Key{k}
	}
	var out []configValue
	for _, k := range keys {
		v, err := config.Get(e.home.ConfigPath(), k.Name)
		if err != nil {
			return err
		}
		out = append(out, configValue{Key: k.Name, Value: v, Live: k.Live})
	}
	if c.JSON {
		if c.Key != "" {
			return printAny(e, out[0])
		}
		return printAny(e, out)
	}
	if c.Key != "" {
		for _, v := range out[0].Value {
			fmt.Fprintln(e.stdout, v)
		}
		return nil
	}
	for _, v := range out {
		fmt.Fprintf(e.stdout, "%s: %s\n", v.Key, strings.Join(v.Value, " "))
	}
	return nil
}

type configSetCmd struct {
	jsonFlag
	Key    string   `arg:"" help:"A key such as mdns or wasm.requestTimeout."`
	Values []string `arg:"" optional:"" help:"The value; list keys take any number (none empties the list)."`
}

func (c *configSetCmd) Run(e *env) error {
	if err := config.Set(e.home.ConfigPath(), c.Key, c.Values); err != nil {
		return err
	}
	return e.applyConfig(c.Key, c.JSON)
}

type configReloadCmd struct{ jsonFlag }

func (c *configReloadCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res, err := d.ReloadConfig(ctx, &messages.ConfigReloadRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, res)
		}
		fmt.Fprintf(e.stdout, "applied: %s\n", listOrNone(res.Applied))
		if len(res.RestartNeeded) > 0 {
			fmt.Fprintf(e.stdout, "waiting for a daemon restart: %s\n", strings.Join(res.RestartNeeded, ", "))
		}
		return nil
	})
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "nothing changed"
	}
	return strings.Join(s, ", ")
}

// configApplied is what `config set`, `relay add` and `mounts allow` say
// in --json.
type configApplied struct {
	Key   string   `json:"key"`
	Value []string `json:"value"`
	// DaemonRunning says a daemon was there to apply the change.
	DaemonRunning bool `json:"daemonRunning"`
	// Applied says the running daemon applies the change already.
	Applied bool `json:"applied"`
	// RestartNeeded says the change waits for the daemon's next start.
	RestartNeeded bool `json:"restartNeeded"`
}

// applyConfig asks the running daemon, if any, to apply the edited key,
// and says what happened to the change.
func (e *env) applyConfig(key string, asJSON bool) error {
	k, err := config.Lookup(key)
	if err != nil {
		return err
	}
	value, err := config.Get(e.home.ConfigPath(), key)
	if err != nil {
		return err
	}
	res := configApplied{Key: key, Value: value, RestartNeeded: k.NeedsRestart()}
	d, err := e.connect()
	switch {
	case err == nil:
		defer d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reply, err := d.ReloadConfig(ctx, &messages.ConfigReloadRequest{})
		if err != nil {
			return fmt.Errorf("config.yaml is saved, but the daemon did not apply it: %s", message(err))
		}
		res.DaemonRunning = true
		res.Applied = k.Live
		for _, name := range reply.RestartNeeded {
			res.RestartNeeded = res.RestartNeeded || name == key
		}
	case !daemonAbsent(err):
		return fmt.Errorf("config.yaml is saved, but the daemon could not be asked to apply it: %v", err)
	}
	if asJSON {
		return printAny(e, res)
	}
	shown := strings.Join(value, " ")
	if k.Kind == config.List {
		shown = "[" + strings.Join(value, ", ") + "]"
	}
	switch {
	case res.Applied:
		fmt.Fprintf(e.stdout, "%s = %s (applied by the running daemon %s)\n", key, shown, k.When)
	case !k.NeedsRestart() && !k.Live:
		fmt.Fprintf(e.stdout, "%s = %s (saved; applies %s)\n", key, shown, k.When)
	case res.DaemonRunning:
		fmt.Fprintf(e.stdout, "%s = %s (saved; the running daemon applies it only after a restart: `%s`)\n", key, shown, e.restartCommand())
	default:
		fmt.Fprintf(e.stdout, "%s = %s (saved; the daemon is not running and applies it when it starts)\n", key, shown)
	}
	return nil
}

// daemonAbsent says err from connect means no daemon runs on the home
// (dialError words it so), as opposed to one that cannot be reached.
func daemonAbsent(err error) bool {
	return strings.Contains(err.Error(), "fungi daemon is not running")
}

func printAny(e *env, v any) error {
	data, err := jsonMarshalIndent(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(data))
	return err
}
