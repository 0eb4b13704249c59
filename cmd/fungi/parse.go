package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/fungi-go/fungi/internal/version"
)

// parse is kong's Kong.Parse, validate its Context.Validate and runCommand
// its Context.Run, for what fungi's tree uses of them. Kong looks hooks and
// Run methods up with reflect's MethodByName and names the linker cannot
// see; once such a call is reachable the linker keeps every exported method
// of every type in the binary, used or not (4.5 MB of the release binary,
// alecthomas/kong#547). Here the two hooks fungi's tree has, --help and
// --version, and the Run methods are found by interface assertions, which
// the linker can follow. TestParseMatchesKong holds parse to kong's Parse
// on every command; TestCommandTree fails when the tree gains a kong
// feature this does not implement (a hook, a validator, an and-group).
func parse(k *kong.Kong, args []string) (*kong.Context, error) {
	ctx, err := kong.Trace(k, args)
	if err != nil {
		return nil, err
	}
	if ctx.Error != nil {
		return ctx, ctx.Error
	}
	for _, p := range ctx.Path {
		if err := beforeReset(ctx, p); err != nil {
			return ctx, err
		}
	}
	if err := ctx.Reset(); err != nil {
		return ctx, err
	}
	if err := ctx.Resolve(); err != nil {
		return ctx, err
	}
	if _, err := ctx.Apply(); err != nil {
		return ctx, err
	}
	return ctx, validate(ctx)
}

// helpHook is kong's --help flag: it prints the help and exits.
type helpHook interface {
	BeforeReset(*kong.Context) error
}

// beforeReset runs the BeforeReset hook of a flag given on the command
// line, as kong's Parse does before it applies defaults.
func beforeReset(ctx *kong.Context, p *kong.Path) error {
	if p.Flag == nil || !p.Flag.Target.IsValid() {
		return nil
	}
	switch f := p.Flag.Target.Interface().(type) {
	case helpHook:
		return f.BeforeReset(ctx)
	case kong.VersionFlag:
		return f.BeforeReset(ctx.Kong, kong.Vars{"version": version.Version})
	}
	return nil
}

// command is a command that runs with what every command gets.
type command interface {
	Run(e *env) error
}

// daemonSubcommand is a `fungi daemon` subcommand: it also reads the
// daemon flags given before its name.
type daemonSubcommand interface {
	Run(e *env, d *daemonCmd) error
}

// runCommand runs the Run method of the command ctx selected.
func runCommand(ctx *kong.Context, c *cli, e *env) error {
	node := ctx.Selected()
	if node == nil {
		return fmt.Errorf("no command selected")
	}
	switch cmd := node.Target.Addr().Interface().(type) {
	case command:
		return cmd.Run(e)
	case daemonSubcommand:
		return cmd.Run(e, &c.Daemon)
	}
	return fmt.Errorf("%s has no Run method", node.Path())
}

// validate is kong's Context.Validate for the checks fungi's tree needs:
// enums, required flags and positionals, a group command given alone, and
// xor groups. Its messages are kong's.
func validate(ctx *kong.Context) error {
	for _, p := range ctx.Path {
		node := p.Node()
		if node == nil {
			continue
		}
		for _, v := range node.Values() {
			if v.Enum != "" && (!v.Required || v.HasDefault || (len(v.Tag.Envs) != 0 && anyEnvSet(v.Tag.Envs))) {
				if err := checkEnum(v, v.Target); err != nil {
					return err
				}
			}
		}
	}
	for _, p := range ctx.Path {
		var v *kong.Value
		switch {
		case p.Flag != nil:
			v = p.Flag.Value
		case p.Positional != nil:
			v = p.Positional
		}
		if v != nil && v.Tag.Enum != "" {
			if err := checkEnum(v, v.Target); err != nil {
				return err
			}
		}
		if err := missingFlags(p.Flags); err != nil {
			return err
		}
	}
	node := ctx.Selected()
	if node == nil {
		node = ctx.Model.Node
	}
	positionals := 0
	for _, p := range ctx.Path {
		if p.Positional != nil {
			positionals = p.Positional.Position + 1
		}
	}
	if err := missingChildren(node); err != nil {
		return err
	}
	if err := missingPositionals(positionals, node.Positional); err != nil {
		return err
	}
	return xorDuplicates(ctx.Path)
}

// runnable says whether a command node has a Run method of its own.
func runnable(n *kong.Node) bool {
	if !n.Target.IsValid() || !n.Target.CanAddr() {
		return false
	}
	switch n.Target.Addr().Interface().(type) {
	case command, daemonSubcommand:
		return true
	}
	return false
}

func missingChildren(node *kong.Node) error {
	var missing, missingArgs []string
	for _, arg := range node.Positional {
		if arg.Required && !arg.Set {
			missingArgs = append(missingArgs, arg.Summary())
		}
	}
	if len(missingArgs) > 0 {
		missing = append(missing, fmt.Sprintf("%q", strings.Join(missingArgs, " ")))
	}
	run := runnable(node)
	for _, child := range node.Children {
		if child.Hidden {
			continue
		}
		if child.Argument != nil {
			if child.Argument.Required {
				missing = append(missing, fmt.Sprintf("%q", child.Summary()))
			}
		} else if !run {
			missing = append(missing, fmt.Sprintf("%q", child.Name))
		}
	}
	switch {
	case len(missing) == 0:
		return nil
	case len(missing) == 1:
		return fmt.Errorf("expected %s", missing[0])
	case len(missing) > 5:
		missing = append(missing[:5], "...")
	}
	return fmt.Errorf("expected one of %s", strings.Join(missing, ", "))
}

func missingFlags(flags []*kong.Flag) error {
	var missing []string
	for _, f := range flags {
		if f.Required && !f.Set {
			missing = append(missing, f.Summary())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("missing flags: %s", strings.Join(missing, ", "))
}

func missingPositionals(given int, values []*kong.Value) error {
	if given >= len(values) || !values[given].Required {
		return nil
	}
	var missing []string
	for _, arg := range values[given:] {
		if len(arg.Tag.Envs) != 0 && anyEnvSet(arg.Tag.Envs) {
			continue
		}
		missing = append(missing, "<"+arg.Name+">")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing positional arguments %s", strings.Join(missing, " "))
}

func checkEnum(value *kong.Value, target reflect.Value) error {
	switch target.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range target.Len() {
			if err := checkEnum(value, target.Index(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map, reflect.Struct:
		return errors.New("enum can only be applied to a slice or value")
	case reflect.Pointer:
		if target.IsNil() {
			return nil
		}
		return checkEnum(value, target.Elem())
	}
	got := fmt.Sprintf("%v", target)
	var enums []string
	for _, e := range value.EnumSlice() {
		if e == got {
			return nil
		}
		enums = append(enums, fmt.Sprintf("%q", e))
	}
	return fmt.Errorf("%s must be one of %s but got %q", value.ShortSummary(), strings.Join(enums, ","), fmt.Sprintf("%v", target.Interface()))
}

func xorDuplicates(paths []*kong.Path) error {
	for _, p := range paths {
		seen := map[string]*kong.Flag{}
		for _, f := range p.Flags {
			if !f.Set {
				continue
			}
			for _, x := range f.Xor {
				if seen[x] != nil {
					return fmt.Errorf("--%s and --%s can't be used together", seen[x].Name, f.Name)
				}
				seen[x] = f
			}
		}
	}
	return nil
}

func anyEnvSet(envs []string) bool {
	for _, e := range envs {
		if _, ok := os.LookupEnv(e); ok {
			return true
		}
	}
	return false
}
