package component

import (
	"os"
	"testing"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// FuzzLink feeds decodable components to the linker: whatever they say, it
// must return (a plan or an error) without panicking.
func FuzzLink(f *testing.F) {
	f.Add(importing("wasi:cli/environment@0.2.0", "get-environment"))
	if b, err := os.ReadFile(corpusPathOrEmpty("A/containerd_runwasi__hello_wasi_http.wasm")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dc, err := bin.Decode(b)
		if err != nil {
			return
		}
		l := &linker{missing: map[string][]string{}}
		_ = l.link(dc, &scope{}, nil, 0)
	})
}
