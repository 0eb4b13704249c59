package component

import (
	"fmt"
	"io"
	"math/rand/v2"
)

// hostFuncs is fungi's WASI 0.2 host: interface (without its version) ->
// function -> its hostDef. An interface listed with no functions is one
// whose types fungi provides (a component may import only its types).
// Each wasi_*.go file holds one WASI package's part.
var hostFuncs = joinHost(ioHost, cliHost, clocksHost, randomHost, filesystemHost, httpHost, socketHost)

// hostDef is one host function with the WIT type it implements. The
// implementation takes and returns []any and so declares nothing itself;
// sig is the function as the WASI WIT writes it, in the form
// wit.Func.Signature renders ("func(len: u64) -> result<list<u8>,stream-error>",
// a method without its self parameter, a constructor without its result),
// so that TestHostMatchesWIT can hold each function to the WIT it claims.
type hostDef struct {
	sig string
	fn  hostFunc
}

// joinHost merges the parts of hostFuncs; an interface in two parts is a
// host bug.
func joinHost(parts ...map[string]map[string]hostDef) map[string]map[string]hostDef {
	out := map[string]map[string]hostDef{}
	for _, part := range parts {
		for iface, funcs := range part {
			if _, dup := out[iface]; dup {
				panic("fungi WASI host: " + iface + " defined twice")
			}
			out[iface] = funcs
		}
	}
	return out
}

// wasiState is one instance's WASI context.
type wasiState struct {
	cfg            *Config
	stdin          io.Reader
	stdout, stderr io.Writer
	seed           [2]uint64
	preopens       []*descriptor
	sock           *sockState // wasi:sockets bookkeeping, made on first use
}

func newWASI(cfg *Config) (*wasiState, error) {
	w := &wasiState{cfg: cfg, stdin: cfg.Stdin, stdout: cfg.Stdout, stderr: cfg.Stderr}
	if w.stdin == nil {
		w.stdin = eofReader{}
	}
	if w.stdout == nil {
		w.stdout = io.Discard
	}
	if w.stderr == nil {
		w.stderr = io.Discard
	}
	w.seed = [2]uint64{rand.Uint64(), rand.Uint64()}
	for _, p := range cfg.Preopens {
		d, err := openPreopen(p)
		if err != nil {
			w.close()
			return nil, err
		}
		w.preopens = append(w.preopens, d)
	}
	return w, nil
}

func (w *wasiState) close() {
	for _, d := range w.preopens {
		d.closeRoot()
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// caseIndex finds label in an enum's or variant's labels; the WIT of every
// 0.2.x version fungi serves has it, so a miss is a host bug.
func caseIndex(t *vtype, label string) uint32 {
	for i, l := range t.labels {
		if l == label {
			return uint32(i)
		}
	}
	panic(fmt.Sprintf("fungi WASI host: type has no case %q (labels %v)", label, t.labels))
}
