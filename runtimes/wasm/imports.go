package wasm

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// wasiModule is the only module a core module may import from: the WASI
// preview 1 functions wazero provides.
const wasiModule = "wasi_snapshot_preview1"

// maxListedImports bounds how many unknown imports a refusal lists.
const maxListedImports = 12

// checkModuleShape refuses, at pull, a core module fungi could not run,
// saying what the file is and what would run it: one that imports what
// fungi does not provide (it would fail every run), and one without a
// _start to run. wasiFuncs are the preview 1 functions on offer.
func checkModuleShape(compiled wazero.CompiledModule, wasiFuncs map[string]bool) error {
	var unknown, importModules []string
	for _, f := range compiled.ImportedFunctions() {
		module, name, _ := f.Import()
		if !slices.Contains(importModules, module) {
			importModules = append(importModules, module)
		}
		if module != wasiModule || !wasiFuncs[name] {
			unknown = append(unknown, module+"."+name)
		}
	}
	for _, m := range compiled.ImportedMemories() {
		module, name, _ := m.Import()
		if !slices.Contains(importModules, module) {
			importModules = append(importModules, module)
		}
		unknown = append(unknown, module+"."+name+" (a memory)")
	}
	exports := compiled.ExportedFunctions()
	if len(unknown) > 0 {
		return fmt.Errorf("%s; it was refused", unknownImports(unknown, importModules, exports))
	}
	if _, ok := exports["_start"]; ok {
		return nil
	}
	if _, ok := exports["_initialize"]; ok {
		return fmt.Errorf("the module is a WASI reactor (a library: it exports %s for a host program to call) with no _start export; fungi runs command modules, which have a main function (for Rust: a bin crate for wasm32-wasip1; for Go: package main with GOOS=wasip1)", exportList(exports))
	}
	return errors.New("the module has no _start export: fungi runs WASI command modules, each request a fresh run (for Go: package main with GOOS=wasip1)")
}

// unknownImports says what a module that imports more than preview 1 is,
// by the modules it imports from.
func unknownImports(unknown, modules []string, exports map[string]api.FunctionDefinition) string {
	list := strings.Join(unknown[:min(len(unknown), maxListedImports)], ", ")
	if len(unknown) > maxListedImports {
		list += fmt.Sprintf(" and %d more", len(unknown)-maxListedImports)
	}
	has := func(pred func(string) bool) bool { return slices.ContainsFunc(modules, pred) }
	switch {
	case has(func(m string) bool { return strings.HasPrefix(m, "wasi:") }) && exports["fd_write"] != nil:
		return fmt.Sprintf("the file is the WASI preview 1 adapter (it imports WASI 0.2 interfaces and exports preview 1 functions): a part `wasm-tools component new app.wasm --adapt wasi_snapshot_preview1=<adapter>` uses to make a component, not a program; make the component and pull that (imports: %s)", list)
	case has(func(m string) bool { return strings.HasPrefix(m, "wasi:") }):
		return fmt.Sprintf("the file is the core module of a component (it imports WASI 0.2 interfaces directly: %s); make it a component with `wasm-tools component new` and pull the component", list)
	case has(func(m string) bool {
		return strings.HasPrefix(m, "spin") || strings.HasPrefix(m, "fermyon:") || strings.HasPrefix(m, "outbound-")
	}):
		return fmt.Sprintf("the file is a Spin SDK module: it imports Spin's host interfaces (%s), which only Spin provides; run it with `spin up`, or rebuild it as a WAGI module or a wasi:http component for fungi", list)
	case has(func(m string) bool { return m == "wasi_experimental_http" }):
		return fmt.Sprintf("the module imports wasi-experimental-http (%s), WAGI's old outbound HTTP, which fungi does not provide; rebuild it as a wasi:http component, whose outgoing requests fungi serves (spec.allowOutboundHttp)", list)
	case has(func(m string) bool { return m == "wasi_unstable" }):
		return fmt.Sprintf("the module imports wasi_unstable (%s), the 2019 WASI snapshot 0, which fungi does not provide; rebuild it for wasm32-wasip1 (WASI preview 1)", list)
	case !has(func(m string) bool { return m != wasiModule }):
		return fmt.Sprintf("the module imports WASI preview 1 functions the engine does not provide (%s)", list)
	default:
		return fmt.Sprintf("the module imports %s, which fungi does not provide: a core module gets WASI preview 1 (%s) and nothing else; it needs the host it was built for", list, wasiModule)
	}
}

// exportList names a module's exported functions, boundedly.
func exportList(exports map[string]api.FunctionDefinition) string {
	var names []string
	for n := range exports {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) > maxListedImports {
		return strings.Join(names[:maxListedImports], ", ") + fmt.Sprintf(" and %d more", len(names)-maxListedImports)
	}
	return strings.Join(names, ", ")
}
