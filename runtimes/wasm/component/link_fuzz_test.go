package component

import (
	"testing"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// FuzzLink feeds decodable components to the linker: whatever they say, it
// must return (a plan or an error) without panicking. The seeds are small
// whole components (the hand-made guests have two core modules each), so
// mutations reach core instantiation and import rewriting too.
func FuzzLink(f *testing.F) {
	f.Add(importing("wasi:cli/environment@0.2.0", "get-environment"))
	f.Add(escapeGuest())
	f.Add(resourceGuest())
	f.Fuzz(func(t *testing.T, b []byte) {
		dc, err := bin.Decode(b)
		if err != nil {
			return
		}
		l := &linker{missing: map[string][]string{}}
		// Only the linker's own bounds may panic (as traps); any other
		// panic is a bug the fuzzer must see, so link is called directly.
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(*trap); !ok {
					panic(r)
				}
			}
		}()
		_ = l.link(dc, &scope{}, nil, 0)
	})
}
