package component

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fungi-go/fungi/internal/wasmasm"
)

// No corpus binary makes symlinks, so this test assembles a small command
// component by hand: a guest that, through the canonical ABI and the real
// wasi:filesystem host, makes the symlink up -> ".." in its mount and then
// tries to open up/secret, ../secret, ../../secret and /etc/passwd. run
// returns err if any of them opens, or if the control file "inside" does not.

var fsErrorCodes = []string{"access", "would-block", "already", "bad-descriptor", "busy", "deadlock", "quota",
	"exist", "file-too-large", "illegal-byte-sequence", "in-progress", "interrupted", "invalid", "io",
	"is-directory", "loop", "too-many-links", "message-size", "name-too-long", "no-device", "no-entry",
	"no-lock", "insufficient-memory", "insufficient-space", "not-directory", "not-empty",
	"not-recoverable", "unsupported", "no-tty", "no-such-device", "overflow", "not-permitted", "pipe",
	"read-only", "invalid-seek", "text-file-busy", "cross-device"}

var escapePaths = []string{"up/secret", "../secret", "../../secret", "/etc/passwd", "up/up/secret"}

func labels(ls ...string) []byte {
	var items [][]byte
	for _, l := range ls {
		items = append(items, str(l))
	}
	return wasmasm.Vec(len(ls), items...)
}

func field(name string, t byte) []byte { return append(str(name), t) }

// escapeGuest is the guest component's binary.
func escapeGuest() []byte {
	// Strings in the guest's memory from offset 64.
	strs := append([]string{"..", "up", "inside"}, escapePaths...)
	off := map[string]int32{}
	var data []byte
	for _, s := range strs {
		off[s] = int32(64 + len(data))
		data = append(data, s...)
	}

	memMod := wasmasm.Cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0},
		wasmasm.Section(1, wasmasm.Vec(1, []byte{0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f})...),
		wasmasm.Section(3, wasmasm.Vec(1, []byte{0})...),
		wasmasm.Section(5, wasmasm.Vec(1, []byte{0x00, 1})...),
		wasmasm.Section(6, wasmasm.Vec(1, wasmasm.Cat([]byte{0x7f, 0x01}, wasmasm.I32(1024), []byte{0x0b}))...),
		wasmasm.Section(7, wasmasm.Vec(2, wasmasm.Cat(str("memory"), []byte{0x02, 0}), wasmasm.Cat(str("realloc"), []byte{0x00, 0}))...),
		wasmasm.Section(10, wasmasm.Vec(1, wasmasm.FuncBody([]byte{0}, []byte{
			0x23, 0, 0x20, 2, 0x6a, 0x41, 1, 0x6b, 0x41, 0, 0x20, 2, 0x6b, 0x71, // (heap+align-1) & -align
			0x22, 0, 0x20, 3, 0x6a, 0x24, 0, 0x20, 0, 0x0b}))...),
		wasmasm.Section(11, wasmasm.Vec(1, wasmasm.Cat([]byte{0}, wasmasm.I32(64), []byte{0x0b}, appendU32(nil, uint32(len(data))), data))...),
	)

	const dirsRet, symRet, openRet = 16, 32, 48
	openAt := func(path string) []byte {
		return wasmasm.Cat([]byte{0x20, 0}, wasmasm.I32(1), wasmasm.I32(off[path]), wasmasm.I32(int32(len(path))), wasmasm.I32(0), wasmasm.I32(1), wasmasm.I32(openRet),
			[]byte{0x10, 2}, wasmasm.I32(openRet), []byte{0x2d, 0, 0}) // leaves the result tag
	}
	fail := wasmasm.Cat([]byte{0x04, 0x40}, wasmasm.I32(1), []byte{0x0f, 0x0b}) // if: return err
	code := wasmasm.Cat(
		wasmasm.I32(dirsRet), []byte{0x10, 0}, // get-directories(retptr)
		wasmasm.I32(dirsRet), []byte{0x28, 2, 0, 0x28, 2, 0, 0x21, 0}, // d = first preopen's descriptor
		[]byte{0x20, 0}, wasmasm.I32(off[".."]), wasmasm.I32(2), wasmasm.I32(off["up"]), wasmasm.I32(2), wasmasm.I32(symRet), []byte{0x10, 1},
		wasmasm.I32(symRet), []byte{0x2d, 0, 0}, fail, // symlink-at failed
	)
	for _, p := range escapePaths {
		code = append(code, openAt(p)...)
		code = append(code, 0x45) // i32.eqz: the open succeeded
		code = append(code, fail...)
	}
	code = append(code, openAt("inside")...)
	code = append(code, fail...)
	code = append(code, wasmasm.I32(0)...)
	code = append(code, 0x0b)
	i32s := func(n int) []byte {
		b := []byte{0x60, byte(n)}
		for i := 0; i < n; i++ {
			b = append(b, 0x7f)
		}
		return append(b, 0)
	}
	mainMod := wasmasm.Cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0},
		wasmasm.Section(1, wasmasm.Vec(4, i32s(1), i32s(6), i32s(7), []byte{0x60, 0, 1, 0x7f})...),
		wasmasm.Section(2, wasmasm.Vec(4,
			wasmasm.Cat(str("fs"), str("get-dirs"), []byte{0x00, 0}),
			wasmasm.Cat(str("fs"), str("symlink-at"), []byte{0x00, 1}),
			wasmasm.Cat(str("fs"), str("open-at"), []byte{0x00, 2}),
			wasmasm.Cat(str("env"), str("memory"), []byte{0x02, 0x00, 1}))...),
		wasmasm.Section(3, wasmasm.Vec(1, []byte{3})...),
		wasmasm.Section(7, wasmasm.Vec(1, wasmasm.Cat(str("run"), []byte{0x00, 3}))...),
		wasmasm.Section(10, wasmasm.Vec(1, wasmasm.FuncBody([]byte{1, 1, 0x7f}, code))...),
	)

	export := func(name string, desc ...byte) []byte { return wasmasm.Cat([]byte{0x04, 0x00}, str(name), desc) }
	typeDecl := func(t ...byte) []byte { return append([]byte{0x01}, t...) }
	fsTypes := wasmasm.Cat([]byte{0x42}, wasmasm.Vec(13,
		export("descriptor", 0x03, 0x01),                                // t0
		typeDecl(wasmasm.Cat([]byte{0x6d}, labels(fsErrorCodes...))...), // t1 error-code
		typeDecl(0x68, 0),             // t2 borrow<descriptor>
		typeDecl(0x6a, 0x00, 0x01, 1), // t3 result<_, error-code>
		typeDecl(wasmasm.Cat([]byte{0x40}, wasmasm.Vec(3, field("self", 2), field("old-path", 0x73), field("new-path", 0x73)), []byte{0x00, 3})...), // t4
		export("[method]descriptor.symlink-at", 0x01, 4),
		typeDecl(wasmasm.Cat([]byte{0x6e}, labels("symlink-follow"))...),                                                                                          // t5
		typeDecl(wasmasm.Cat([]byte{0x6e}, labels("create", "directory", "exclusive", "truncate"))...),                                                            // t6
		typeDecl(wasmasm.Cat([]byte{0x6e}, labels("read", "write", "file-integrity-sync", "data-integrity-sync", "requested-write-sync", "mutate-directory"))...), // t7
		typeDecl(0x69, 0),                // t8 own<descriptor>
		typeDecl(0x6a, 0x01, 8, 0x01, 1), // t9 result<own<descriptor>, error-code>
		typeDecl(wasmasm.Cat([]byte{0x40}, wasmasm.Vec(5, field("self", 2), field("path-flags", 5), field("path", 0x73), field("open-flags", 6), field("flags", 7)), []byte{0x00, 9})...), // t10
		export("[method]descriptor.open-at", 0x01, 10),
	))
	preopens := wasmasm.Cat([]byte{0x42}, wasmasm.Vec(6,
		[]byte{0x02, 0x03, 0x02, 1, 1}, // alias outer 1 type 1 (descriptor) -> t0
		typeDecl(0x69, 0),              // t1 own
		typeDecl(wasmasm.Cat([]byte{0x6f}, wasmasm.Vec(2, []byte{1}, []byte{0x73}))...), // t2 tuple<own, string>
		typeDecl(0x70, 2),          // t3 list
		typeDecl(0x40, 0, 0x00, 3), // t4 func() -> list
		export("get-directories", 0x01, 4),
	))
	sortIdx := func(core bool, sort byte, i byte) []byte {
		if core {
			return []byte{0x00, sort, i}
		}
		return []byte{sort, i}
	}
	comp := wasmasm.Cat(wasmasm.Preamble,
		wasmasm.Section(7, wasmasm.Cat([]byte{1}, fsTypes)...),                                                       // type 0
		wasmasm.Section(10, wasmasm.Cat([]byte{1, 0x00}, str("wasi:filesystem/types@0.2.0"), []byte{0x05, 0})...),    // instance 0
		wasmasm.Section(6, wasmasm.Cat([]byte{1, 0x03, 0x00, 0}, str("descriptor"))...),                              // type 1
		wasmasm.Section(7, wasmasm.Cat([]byte{1}, preopens)...),                                                      // type 2
		wasmasm.Section(10, wasmasm.Cat([]byte{1, 0x00}, str("wasi:filesystem/preopens@0.2.0"), []byte{0x05, 2})...), // instance 1
		wasmasm.Section(1, memMod...),     // core module 0
		wasmasm.Section(1, mainMod...),    // core module 1
		wasmasm.Section(2, 1, 0x00, 0, 0), // core instance 0 = mem module
		wasmasm.Section(6, wasmasm.Cat([]byte{2},
			[]byte{0x00, 0x02, 0x01, 0}, str("memory"), // core memory 0
			[]byte{0x00, 0x00, 0x01, 0}, str("realloc"))...), // core func 0
		wasmasm.Section(6, wasmasm.Cat([]byte{3},
			[]byte{0x01, 0x00, 1}, str("get-directories"), // func 0
			[]byte{0x01, 0x00, 0}, str("[method]descriptor.symlink-at"), // func 1
			[]byte{0x01, 0x00, 0}, str("[method]descriptor.open-at"))...), // func 2
		wasmasm.Section(8, 3,
			0x01, 0x00, 0, 3, 0x03, 0, 0x04, 0, 0x00, // lower func 0 -> core func 1
			0x01, 0x00, 1, 3, 0x03, 0, 0x04, 0, 0x00, // lower func 1 -> core func 2
			0x01, 0x00, 2, 3, 0x03, 0, 0x04, 0, 0x00), // lower func 2 -> core func 3
		wasmasm.Section(2, wasmasm.Cat([]byte{2},
			[]byte{0x01}, wasmasm.Vec(3, wasmasm.Cat(str("get-dirs"), []byte{0x00, 1}), wasmasm.Cat(str("symlink-at"), []byte{0x00, 2}), wasmasm.Cat(str("open-at"), []byte{0x00, 3})),
			[]byte{0x01}, wasmasm.Vec(1, wasmasm.Cat(str("memory"), []byte{0x02, 0})))...), // core instances 1, 2
		wasmasm.Section(2, wasmasm.Cat([]byte{1, 0x00, 1}, wasmasm.Vec(2, wasmasm.Cat(str("fs"), []byte{0x12, 1}), wasmasm.Cat(str("env"), []byte{0x12, 2})))...), // core instance 3
		wasmasm.Section(6, wasmasm.Cat([]byte{1, 0x00, 0x00, 0x01, 3}, str("run"))...),                                                                            // core func 4
		wasmasm.Section(7, 2, 0x6a, 0x00, 0x00, 0x40, 0, 0x00, 3),                                                                                                 // type 3 result, type 4 func() -> result
		wasmasm.Section(8, 1, 0x00, 0x00, 4, 0, 4),                                                                                                                // lift core func 4 -> func 3
		wasmasm.Section(5, wasmasm.Cat([]byte{1, 0x01}, wasmasm.Vec(1, wasmasm.Cat([]byte{0x00}, str("run"), sortIdx(false, 0x01, 3))))...),                       // instance 2
		wasmasm.Section(11, wasmasm.Cat([]byte{1, 0x00}, str("wasi:cli/run@0.2.0"), sortIdx(false, 0x05, 2), []byte{0x00})...),
	)
	return comp
}

func TestGuestSymlinkAndDotDotReachNothingOutsideItsMount(t *testing.T) {
	c, err := Compile(context.Background(), runtime(t), escapeGuest())
	if err != nil {
		t.Fatalf("compile the hand-made guest: %v", err)
	}
	defer c.Close(context.Background())
	for _, tc := range []struct {
		name   string
		inside bool
		code   int
	}{{"escapes refused", true, 0}, {"control without the inside file", false, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			mount := filepath.Join(root, "mount")
			if err := os.MkdirAll(mount, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "secret"), []byte("outside"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.inside {
				if err := os.WriteFile(filepath.Join(mount, "inside"), []byte("inside"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			code, err := c.Run(context.Background(), Config{Preopens: []Preopen{{HostPath: mount, GuestPath: "/data"}}})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d (0: every escape refused and the inside file opened)", code, tc.code)
			}
			if target, err := os.Readlink(filepath.Join(mount, "up")); err != nil || target != ".." {
				t.Fatalf("the guest's symlink up -> ..: %q, %v", target, err)
			}
		})
	}
}
