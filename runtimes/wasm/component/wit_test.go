package component

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/runtimes/wasm/component/internal/wit"
)

// Every host function the component host registers is a function of the
// WASI 0.2 WIT (../shared/wit, see its README) under the same interface and
// import name: a misspelt "[method]pollable.block" fails here, not as a
// missing import when some guest first needs it. Each host function's
// declared type (hostDef.sig) must be the WIT's, parameter by parameter and
// in its result. The WIT functions the host does not provide are logged.
//
// The declaration is what the test can hold to the WIT: the implementation
// takes and returns []any, and the linker lifts and lowers by the guest's
// import type (from the guest's own WIT bindings).
func TestHostMatchesWIT(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(), "..", "shared", "wit", "wasi-0.2.9")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no WASI WIT at %s: %v", dir, err)
	}
	pkgs := map[string]*wit.Package{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		pkg, err := wit.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		pkgs[pkg.Name] = pkg
	}

	ifaces := make([]string, 0, len(hostFuncs))
	for name := range hostFuncs {
		ifaces = append(ifaces, name)
	}
	sort.Strings(ifaces)
	provided, total := 0, 0
	for _, iface := range ifaces {
		pkgName, ifName, ok := strings.Cut(iface, "/")
		if !ok {
			t.Errorf("host interface %q: not PACKAGE/INTERFACE", iface)
			continue
		}
		pkg := pkgs[pkgName]
		if pkg == nil {
			t.Errorf("host interface %s: WASI 0.2 has no package %s", iface, pkgName)
			continue
		}
		in := pkg.Interfaces[ifName]
		if in == nil {
			t.Errorf("host interface %s: package %s has no interface %s", iface, pkgName, ifName)
			continue
		}
		names := make([]string, 0, len(hostFuncs[iface]))
		for name := range hostFuncs[iface] {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if in.Funcs[name] == nil {
				t.Errorf("host function %s#%s: the WIT of %s has no such function (its functions: %s)", iface, name, iface, strings.Join(funcNames(in), ", "))
				continue
			}
			for _, d := range sigDiffs(hostFuncs[iface][name].sig, in.Funcs[name]) {
				t.Errorf("host function %s#%s: %s", iface, name, d)
			}
		}
		var missing []string
		for _, name := range funcNames(in) {
			total++
			if _, ok := hostFuncs[iface][name]; !ok {
				missing = append(missing, name+": "+in.Funcs[name].Signature())
			} else {
				provided++
			}
		}
		if len(missing) > 0 {
			t.Logf("%s: not provided:\n\t%s", iface, strings.Join(missing, "\n\t"))
		}
	}
	// Interfaces of WASI 0.2 that the host does not serve at all.
	var absent []string
	for _, pkg := range pkgs {
		for name := range pkg.Interfaces {
			if _, ok := hostFuncs[pkg.Name+"/"+name]; !ok {
				absent = append(absent, pkg.Name+"/"+name)
			}
		}
	}
	sort.Strings(absent)
	t.Logf("the host provides %d of the %d functions of the %d interfaces it serves; interfaces not served: %s", provided, total, len(ifaces), strings.Join(absent, ", "))
}

func funcNames(in *wit.Interface) []string {
	out := make([]string, 0, len(in.Funcs))
	for name := range in.Funcs {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// sigDiffs says where a host function's declared signature differs from
// the WIT's function want: each parameter's name and type, and the result.
func sigDiffs(sig string, want *wit.Func) []string {
	got, err := wit.ParseFunc(sig)
	if err != nil {
		return []string{fmt.Sprintf("declared signature does not read (%v); the WIT has %s", err, want.Signature())}
	}
	var out []string
	if len(got.Params) != len(want.Params) {
		out = append(out, fmt.Sprintf("declared with %d parameters, the WIT has %d: declared %s, WIT %s", len(got.Params), len(want.Params), got.Signature(), want.Signature()))
	} else {
		for i, p := range got.Params {
			w := want.Params[i]
			if p.Name != w.Name {
				out = append(out, fmt.Sprintf("parameter %d is declared %s, the WIT names it %s", i+1, p.Name, w.Name))
			}
			if p.Type != w.Type {
				out = append(out, fmt.Sprintf("parameter %s is declared %s, the WIT has %s", w.Name, p.Type, w.Type))
			}
		}
	}
	if got.Result != want.Result {
		out = append(out, fmt.Sprintf("result is declared %s, the WIT has %s", orNone(got.Result), orNone(want.Result)))
	}
	return out
}

func orNone(t string) string {
	if t == "" {
		return "none"
	}
	return t
}
