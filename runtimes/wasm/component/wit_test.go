package component

import (
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
// missing import when some guest first needs it. The WIT functions the
// host does not provide are logged.
//
// Host functions take and return []any, so their parameter and result
// types are not declared anywhere the test could read; the guest's import
// type (from its own WIT bindings) is what the linker lifts and lowers by.
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
			}
		}
		var missing []string
		for _, name := range funcNames(in) {
			total++
			if hostFuncs[iface][name] == nil {
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
