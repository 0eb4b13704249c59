package main

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/fungi-go/fungi/internal/version"
)

// parsed is what one parse of a command line left: the error, the exit
// code a hook asked for, what it printed, the command and the values.
type parsed struct {
	err     string
	exit    int
	out     string
	command string
	values  cli
}

func parseWith(t *testing.T, args []string, fn func(*kong.Kong, []string) (*kong.Context, error)) (p parsed) {
	t.Helper()
	var out bytes.Buffer
	k, err := kong.New(&p.values,
		kong.Name("fungi"),
		kong.Writers(&out, &out),
		kong.Vars{"version": version.Version},
		kong.Exit(func(code int) { panic(exitCode(code)) }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.out = out.String()
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			p.exit = int(c) + 1
		}
	}()
	ctx, err := fn(k, args)
	if err != nil {
		p.err = err.Error()
	}
	if ctx != nil && err == nil {
		p.command = ctx.Command()
	}
	return p
}

// commandLines are, for every command, lines that reach each check
// validate makes: the words alone (a group, a missing positional or
// required flag), an unknown flag, a bad enum, both flags of an xor group,
// every positional filled, and --help.
func commandLines(t *testing.T) [][]string {
	var c cli
	k, err := kong.New(&c, kong.Name("fungi"))
	if err != nil {
		t.Fatal(err)
	}
	lines := [][]string{{}, {"--version"}, {"--help"}, {"nosuch"}}
	var walk func(n *kong.Node, words []string)
	walk = func(n *kong.Node, words []string) {
		with := func(more ...string) []string { return append(append([]string(nil), words...), more...) }
		lines = append(lines, with(), with("--bogus"), with("--help"))
		xor := map[string]string{}
		var fill []string
		for _, f := range n.Flags {
			if f.Enum != "" {
				lines = append(lines, with("--"+f.Name+"=zzz"), with("--"+f.Name+"="+f.EnumSlice()[len(f.EnumSlice())-1]))
			}
			for _, x := range f.Xor {
				if other, ok := xor[x]; ok {
					lines = append(lines, with("--"+other, "--"+f.Name), with("--"+f.Name))
				}
				xor[x] = f.Name
			}
			if f.Required {
				fill = append(fill, "--"+f.Name+"=1")
			}
		}
		for _, p := range n.Positional {
			v := "x"
			if p.Enum != "" {
				v = "zzz"
				lines = append(lines, with(append(fill, p.EnumSlice()[0])...))
			}
			fill = append(fill, v)
			lines = append(lines, with(fill...))
		}
		for _, child := range n.Children {
			walk(child, with(child.Name))
		}
	}
	for _, child := range k.Model.Children {
		walk(child, []string{child.Name})
	}
	return lines
}

// TestParseMatchesKong holds parse to kong's own Parse: the same error,
// exit, output, command and values for every line of commandLines.
func TestParseMatchesKong(t *testing.T) {
	t.Setenv("FUNGI_DIR", "")
	lines := commandLines(t)
	for _, args := range lines {
		want := parseWith(t, args, (*kong.Kong).Parse)
		got := parseWith(t, args, parse)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fungi %s:\n parse: %+v\n  kong: %+v", strings.Join(args, " "), got, want)
		}
	}
	t.Logf("%d command lines", len(lines))
}

// kongHooks are the methods kong calls by name on commands, flags and
// arguments; parse calls only the BeforeReset of --help and --version.
var kongHooks = []string{"BeforeReset", "BeforeResolve", "BeforeApply", "AfterApply", "AfterRun", "Validate"}

// TestCommandTree fails when the tree uses a kong feature parse, validate
// or runCommand does not implement, or a command they cannot run.
func TestCommandTree(t *testing.T) {
	var c cli
	k, err := kong.New(&c, kong.Name("fungi"))
	if err != nil {
		t.Fatal(err)
	}
	noHooks := func(what string, v reflect.Value) {
		if !v.IsValid() || !v.CanAddr() {
			return
		}
		typ := v.Addr().Type()
		for i := range typ.NumMethod() {
			name := typ.Method(i).Name
			if strings.HasPrefix(name, "Provide") || (slices.Contains(kongHooks, name) && !isBuiltinFlag(v)) {
				t.Errorf("%s has a %s method: kong would call it, parse does not", what, name)
			}
		}
	}
	err = kong.Visit(k.Model, func(n kong.Visitable, next kong.Next) error {
		switch n := n.(type) {
		case *kong.Application:
			noHooks("fungi", n.Target)
		case *kong.Node:
			if n.Type == kong.ArgumentNode {
				t.Errorf("%s: a branching argument; validate does not check them", n.Path())
			}
			noHooks(n.Path(), n.Target)
			_, hasRun := n.Target.Addr().Type().MethodByName("Run")
			switch {
			case len(n.Children) == 0 && !runnable(n):
				t.Errorf("%s: no Run(*env) or Run(*env, *daemonCmd) method", n.Path())
			case len(n.Children) > 0 && hasRun:
				t.Errorf("%s: a command group with a Run method; runCommand runs only the selected command", n.Path())
			}
		case *kong.Flag:
			noHooks("--"+n.Name, n.Target)
			if len(n.And) > 0 {
				t.Errorf("--%s: an and-group; validate does not check them", n.Name)
			}
			if n.Required && (len(n.Xor) > 0 || len(n.LastWins) > 0) {
				t.Errorf("--%s: a required flag in a group; validate does not check them", n.Name)
			}
		case *kong.Value:
			noHooks("<"+n.Name+">", n.Target)
		}
		return next(nil)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isBuiltinFlag says whether v is --help or --version, whose hooks parse
// runs.
func isBuiltinFlag(v reflect.Value) bool {
	_, isHelp := v.Interface().(helpHook)
	return isHelp || v.Type() == reflect.TypeOf(kong.VersionFlag(false))
}
