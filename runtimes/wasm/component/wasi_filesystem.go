package component

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"
	"syscall"
	"time"
)

// wasi:filesystem on os.Root: every path a guest names is resolved by the
// kernel beneath its preopen (os.Root refuses "..", absolute paths and
// symlinks that lead out), so a guest cannot reach outside its mounts even
// through symlinks it creates itself.

// descriptor is a wasi:filesystem descriptor: a folder or a file beneath a preopen.
type descriptor struct {
	root     *os.Root
	rel      string // path beneath root, "." for the preopen itself
	dir      bool
	file     *os.File
	readOnly bool
	write    bool
}

func openPreopen(p Preopen) (*descriptor, error) {
	r, err := os.OpenRoot(p.HostPath)
	if err != nil {
		return nil, fmt.Errorf("open the folder %s for the guest's %s: %w (check the mount's host path)", p.HostPath, p.GuestPath, err)
	}
	return &descriptor{root: r, rel: ".", dir: true, readOnly: p.ReadOnly}, nil
}

func (d *descriptor) closeRoot() { _ = d.root.Close() }

func (d *descriptor) drop() {
	if d.file != nil {
		_ = d.file.Close()
	}
}

// fsError is an error that carries a wasi:filesystem error-code label.
type fsError string

func (e fsError) Error() string { return "wasi:filesystem " + string(e) }

func fsCode(err error) string {
	var fe fsError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &fe):
		return string(fe)
	case errors.Is(err, syscall.ENOTDIR):
		return "not-directory"
	case errors.Is(err, syscall.EISDIR):
		return "is-directory"
	case errors.Is(err, syscall.ENOTEMPTY):
		return "not-empty"
	case errors.Is(err, syscall.ELOOP):
		return "loop"
	case errors.Is(err, syscall.EXDEV):
		return "cross-device"
	case errors.Is(err, syscall.EROFS):
		return "read-only"
	case errors.Is(err, syscall.ENAMETOOLONG):
		return "name-too-long"
	case errors.Is(err, syscall.EINVAL):
		return "invalid"
	case errors.Is(err, fs.ErrNotExist):
		return "no-entry"
	case errors.Is(err, fs.ErrExist):
		return "exist"
	case errors.Is(err, fs.ErrPermission):
		return "access"
	case strings.Contains(err.Error(), "escapes from parent"):
		return "not-permitted"
	}
	return "io"
}

// fsResult is ok(v) or err(error-code) for the called function's result type.
func fsResult(c *cx, v any, err error) []any {
	if err != nil {
		return []any{Variant{Case: 1, Val: caseIndex(c.ft.results[0].cases[1], fsCode(err))}}
	}
	return []any{Variant{Val: v}}
}

// beneath joins a guest path to a descriptor's path, refusing absolute
// paths; ".." and symlinks are left for os.Root to resolve, beneath the root.
func (d *descriptor) beneath(p string) (string, error) {
	if !d.dir {
		return "", fsError("not-directory")
	}
	if strings.HasPrefix(p, "/") || p == "" {
		return "", fsError("not-permitted")
	}
	if d.rel == "." {
		return p, nil
	}
	return d.rel + "/" + p, nil
}

func descType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic-link"
	case m.IsRegular():
		return "regular-file"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character-device"
	case m&fs.ModeDevice != 0:
		return "block-device"
	}
	return "unknown"
}

func datetime(t time.Time) Variant {
	return Variant{Case: 1, Val: []any{uint64(t.Unix()), uint32(t.Nanosecond())}}
}

// statRecord builds descriptor-stat for the result type's ok payload.
func statRecord(c *cx, fi fs.FileInfo) []any {
	rec := c.ft.results[0].cases[0]
	links := linkCount(fi)
	mt := datetime(fi.ModTime())
	return []any{caseIndex(rec.fields[0], descType(fi.Mode())), links, uint64(fi.Size()), mt, mt, mt}
}

func metaHash(fi fs.FileInfo) []any {
	if ino, dev, ok := fileID(fi); ok {
		return []any{ino, dev}
	}
	return []any{uint64(fi.ModTime().UnixNano()), uint64(fi.Size())}
}

func (d *descriptor) stat() (fs.FileInfo, error) {
	if d.file != nil {
		return d.file.Stat()
	}
	return d.root.Stat(d.rel)
}

func (d *descriptor) statAt(flags uint32, p string) (fs.FileInfo, error) {
	rel, err := d.beneath(p)
	if err != nil {
		return nil, err
	}
	if flags&1 != 0 {
		return d.root.Stat(rel)
	}
	return d.root.Lstat(rel)
}

func (d *descriptor) openAt(pathFlags uint32, p string, openFlags, flags uint32) (*descriptor, error) {
	rel, err := d.beneath(p)
	if err != nil {
		return nil, err
	}
	const (
		oCreate, oDirectory, oExclusive, oTruncate = 1, 2, 4, 8
		fRead, fWrite                              = 1, 2
	)
	write := flags&fWrite != 0 || openFlags&(oCreate|oTruncate) != 0
	if write && (d.readOnly || !d.writable()) {
		return nil, fsError("read-only")
	}
	if pathFlags&1 == 0 {
		if fi, err := d.root.Lstat(rel); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fsError("loop")
		}
	}
	fi, err := d.root.Stat(rel)
	switch {
	case err == nil && openFlags&oExclusive != 0 && openFlags&oCreate != 0:
		return nil, fsError("exist")
	case err == nil && fi.IsDir():
		if write {
			return nil, fsError("is-directory")
		}
		return &descriptor{root: d.root, rel: rel, dir: true, readOnly: d.readOnly}, nil
	case openFlags&oDirectory != 0:
		if err != nil {
			return nil, err
		}
		return nil, fsError("not-directory")
	case err != nil && !(errors.Is(err, fs.ErrNotExist) && openFlags&oCreate != 0):
		return nil, err
	}
	mode := os.O_RDONLY
	if write {
		mode = os.O_RDWR
		if flags&fRead == 0 {
			mode = os.O_WRONLY
		}
	}
	if openFlags&oCreate != 0 {
		mode |= os.O_CREATE
	}
	if openFlags&oExclusive != 0 {
		mode |= os.O_EXCL
	}
	if openFlags&oTruncate != 0 {
		mode |= os.O_TRUNC
	}
	f, err := d.root.OpenFile(rel, mode, 0o644)
	if err != nil {
		return nil, err
	}
	return &descriptor{root: d.root, rel: rel, file: f, readOnly: d.readOnly, write: write}, nil
}

func (d *descriptor) writable() bool { return d.dir || d.write }

// dirStream is a directory-entry-stream.
type dirStream struct {
	entries []fs.DirEntry
	next    int
	budget  *hostBudget
	charged int64 // what entries are charged to budget
}

func (s *dirStream) drop() {
	s.budget.release(s.charged)
	s.charged, s.entries = 0, nil
}

// dirChunk is how many entries a listing reads at a time: each chunk is
// charged before it is read, at the longest name a file system allows.
const dirChunk = 256

// readDir lists f, charging each chunk of entries to c's budget before
// reading it and keeping the charge for what was read.
func readDir(c *cx, f *os.File) (*dirStream, error) {
	s := &dirStream{budget: &c.inst.budget}
	const reserve = dirChunk * (dirEntryCost + 255)
	for len(s.entries) < maxDirEntries {
		s.budget.charge(reserve)
		es, err := f.ReadDir(min(dirChunk, maxDirEntries-len(s.entries)))
		s.budget.release(reserve)
		var size int64
		for _, e := range es {
			size += dirEntryCost + int64(len(e.Name()))
		}
		s.budget.charge(size)
		s.charged += size
		s.entries = append(s.entries, es...)
		if errors.Is(err, io.EOF) || len(es) == 0 {
			return s, nil
		}
		if err != nil {
			s.drop()
			return nil, err
		}
	}
	return s, nil
}

// maxDirEntries bounds one directory listing.
const maxDirEntries = 1 << 16

func getDirectories(c *cx, a []any) []any {
	var out []any
	for i, d := range c.inst.wasi.preopens {
		// Each call hands out a new descriptor for the same folder; the root
		// stays open for the whole run.
		nd := &descriptor{root: d.root, rel: ".", dir: true, readOnly: d.readOnly}
		out = append(out, []any{nd, c.inst.wasi.cfg.Preopens[i].GuestPath})
	}
	return []any{out}
}

func fsArg(a []any) *descriptor { return a[0].(*descriptor) }

// filesystemHost is the wasi:filesystem part of hostFuncs.
var filesystemHost = map[string]map[string]hostDef{
	"wasi:filesystem/types":    fsFuncs,
	"wasi:filesystem/preopens": {"get-directories": {"func() -> list<tuple<descriptor,string>>", getDirectories}},
}

var fsFuncs = map[string]hostDef{
	"[method]descriptor.read-via-stream": {"func(offset: filesize) -> result<input-stream,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if d.file == nil {
			return fsResult(c, nil, fsError("is-directory"))
		}
		off := a[1].(uint64)
		if off > math.MaxInt64 {
			return fsResult(c, nil, fsError("invalid"))
		}
		return fsResult(c, &inputStream{r: io.NewSectionReader(d.file, int64(off), math.MaxInt64-int64(off))}, nil)
	}},
	"[method]descriptor.write-via-stream": {"func(offset: filesize) -> result<output-stream,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if d.file == nil || !d.write {
			return fsResult(c, nil, fsError("bad-descriptor"))
		}
		off := a[1].(uint64)
		if off > math.MaxInt64 {
			return fsResult(c, nil, fsError("invalid"))
		}
		return fsResult(c, &outputStream{w: io.NewOffsetWriter(d.file, int64(off))}, nil)
	}},
	"[method]descriptor.append-via-stream": {"func() -> result<output-stream,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if d.file == nil || !d.write {
			return fsResult(c, nil, fsError("bad-descriptor"))
		}
		return fsResult(c, &outputStream{w: appendWriter{d.file}}, nil)
	}},
	"[method]descriptor.advise":    {"func(offset: filesize, length: filesize, advice: advice) -> result<_,error-code>", func(c *cx, a []any) []any { return fsResult(c, nil, nil) }},
	"[method]descriptor.sync-data": {"func() -> result<_,error-code>", func(c *cx, a []any) []any { return fsResult(c, nil, nil) }},
	"[method]descriptor.sync":      {"func() -> result<_,error-code>", func(c *cx, a []any) []any { return fsResult(c, nil, nil) }},
	"[method]descriptor.get-flags": {"func() -> result<descriptor-flags,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		flags := uint32(1) // read
		if d.write || (d.dir && !d.readOnly) {
			flags |= 2
		}
		if d.dir && !d.readOnly {
			flags |= 32
		}
		return fsResult(c, flags, nil)
	}},
	"[method]descriptor.get-type": {"func() -> result<descriptor-type,error-code>", func(c *cx, a []any) []any {
		fi, err := fsArg(a).stat()
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, caseIndex(c.ft.results[0].cases[0], descType(fi.Mode())), nil)
	}},
	"[method]descriptor.set-size": {"func(size: filesize) -> result<_,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if d.file == nil || !d.write {
			return fsResult(c, nil, fsError("bad-descriptor"))
		}
		if a[1].(uint64) > math.MaxInt64 {
			return fsResult(c, nil, fsError("file-too-large"))
		}
		return fsResult(c, nil, d.file.Truncate(int64(a[1].(uint64))))
	}},
	"[method]descriptor.read": {"func(length: filesize, offset: filesize) -> result<tuple<list<u8>,bool>,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if d.file == nil {
			return fsResult(c, nil, fsError("is-directory"))
		}
		n, off := min(a[1].(uint64), maxRead), a[2].(uint64)
		if off > math.MaxInt64 {
			return fsResult(c, nil, fsError("invalid"))
		}
		c.hold(int64(n))
		buf := make([]byte, n)
		k, err := d.file.ReadAt(buf, int64(off))
		if err != nil && !errors.Is(err, io.EOF) {
			return fsResult(c, nil, err)
		}
		return fsResult(c, []any{buf[:k], k < len(buf)}, nil)
	}},
	"[method]descriptor.write": {"func(buffer: list<u8>, offset: filesize) -> result<filesize,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if d.file == nil || !d.write {
			return fsResult(c, nil, fsError("bad-descriptor"))
		}
		off := a[2].(uint64)
		if off > math.MaxInt64 {
			return fsResult(c, nil, fsError("invalid"))
		}
		k, err := d.file.WriteAt(a[1].([]byte), int64(off))
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, uint64(k), nil)
	}},
	"[method]descriptor.read-directory": {"func() -> result<directory-entry-stream,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if !d.dir {
			return fsResult(c, nil, fsError("not-directory"))
		}
		f, err := d.root.Open(d.rel)
		if err != nil {
			return fsResult(c, nil, err)
		}
		defer f.Close()
		s, err := readDir(c, f)
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, s, nil)
	}},
	"[method]directory-entry-stream.read-directory-entry": {"func() -> result<option<directory-entry>,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*dirStream)
		if s.next >= len(s.entries) {
			return fsResult(c, Variant{}, nil)
		}
		e := s.entries[s.next]
		s.next++
		entry := c.ft.results[0].cases[0].elem
		return fsResult(c, Variant{Case: 1, Val: []any{caseIndex(entry.fields[0], descType(e.Type())), e.Name()}}, nil)
	}},
	"[method]descriptor.stat": {"func() -> result<descriptor-stat,error-code>", func(c *cx, a []any) []any {
		fi, err := fsArg(a).stat()
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, statRecord(c, fi), nil)
	}},
	"[method]descriptor.stat-at": {"func(path-flags: path-flags, path: string) -> result<descriptor-stat,error-code>", func(c *cx, a []any) []any {
		fi, err := fsArg(a).statAt(a[1].(uint32), a[2].(string))
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, statRecord(c, fi), nil)
	}},
	"[method]descriptor.metadata-hash": {"func() -> result<metadata-hash-value,error-code>", func(c *cx, a []any) []any {
		fi, err := fsArg(a).stat()
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, metaHash(fi), nil)
	}},
	"[method]descriptor.metadata-hash-at": {"func(path-flags: path-flags, path: string) -> result<metadata-hash-value,error-code>", func(c *cx, a []any) []any {
		fi, err := fsArg(a).statAt(a[1].(uint32), a[2].(string))
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, metaHash(fi), nil)
	}},
	"[method]descriptor.is-same-object": {"func(other: borrow<descriptor>) -> bool", func(c *cx, a []any) []any {
		x, err1 := fsArg(a).stat()
		y, err2 := a[1].(*descriptor).stat()
		return []any{err1 == nil && err2 == nil && os.SameFile(x, y)}
	}},
	"[method]descriptor.open-at": {"func(path-flags: path-flags, path: string, open-flags: open-flags, flags: descriptor-flags) -> result<descriptor,error-code>", func(c *cx, a []any) []any {
		nd, err := fsArg(a).openAt(a[1].(uint32), a[2].(string), a[3].(uint32), a[4].(uint32))
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, nd, nil)
	}},
	"[method]descriptor.create-directory-at": {"func(path: string) -> result<_,error-code>", func(c *cx, a []any) []any {
		return fsResult(c, nil, fsArg(a).mutate(a[1].(string), func(r *os.Root, rel string) error { return r.Mkdir(rel, 0o755) }))
	}},
	"[method]descriptor.remove-directory-at": {"func(path: string) -> result<_,error-code>", func(c *cx, a []any) []any {
		return fsResult(c, nil, fsArg(a).mutate(a[1].(string), func(r *os.Root, rel string) error {
			fi, err := r.Lstat(rel)
			if err == nil && !fi.IsDir() {
				return fsError("not-directory")
			}
			return r.Remove(rel)
		}))
	}},
	"[method]descriptor.unlink-file-at": {"func(path: string) -> result<_,error-code>", func(c *cx, a []any) []any {
		return fsResult(c, nil, fsArg(a).mutate(a[1].(string), func(r *os.Root, rel string) error {
			fi, err := r.Lstat(rel)
			if err == nil && fi.IsDir() {
				return fsError("is-directory")
			}
			return r.Remove(rel)
		}))
	}},
	"[method]descriptor.symlink-at": {"func(old-path: string, new-path: string) -> result<_,error-code>", func(c *cx, a []any) []any {
		target := a[1].(string)
		if strings.HasPrefix(target, "/") {
			return fsResult(c, nil, fsError("not-permitted"))
		}
		return fsResult(c, nil, fsArg(a).mutate(a[2].(string), func(r *os.Root, rel string) error { return r.Symlink(target, rel) }))
	}},
	"[method]descriptor.readlink-at": {"func(path: string) -> result<string,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		rel, err := d.beneath(a[1].(string))
		if err != nil {
			return fsResult(c, nil, err)
		}
		s, err := d.root.Readlink(rel)
		return fsResult(c, s, err)
	}},
	"[method]descriptor.rename-at": {"func(old-path: string, new-descriptor: borrow<descriptor>, new-path: string) -> result<_,error-code>", func(c *cx, a []any) []any {
		d, nd := fsArg(a), a[2].(*descriptor)
		if d.root != nd.root {
			return fsResult(c, nil, fsError("cross-device"))
		}
		newRel, err := nd.beneath(a[3].(string))
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, nil, d.mutate(a[1].(string), func(r *os.Root, rel string) error { return r.Rename(rel, newRel) }))
	}},
	"[method]descriptor.link-at": {"func(old-path-flags: path-flags, old-path: string, new-descriptor: borrow<descriptor>, new-path: string) -> result<_,error-code>", func(c *cx, a []any) []any {
		d, nd := fsArg(a), a[3].(*descriptor)
		if d.root != nd.root {
			return fsResult(c, nil, fsError("cross-device"))
		}
		newRel, err := nd.beneath(a[4].(string))
		if err != nil {
			return fsResult(c, nil, err)
		}
		return fsResult(c, nil, d.mutate(a[2].(string), func(r *os.Root, rel string) error { return r.Link(rel, newRel) }))
	}},
	"[method]descriptor.set-times": {"func(data-access-timestamp: new-timestamp, data-modification-timestamp: new-timestamp) -> result<_,error-code>", func(c *cx, a []any) []any {
		d := fsArg(a)
		if d.readOnly {
			return fsResult(c, nil, fsError("read-only"))
		}
		return fsResult(c, nil, d.root.Chtimes(d.rel, newTimestamp(a[1]), newTimestamp(a[2])))
	}},
	"[method]descriptor.set-times-at": {"func(path-flags: path-flags, path: string, data-access-timestamp: new-timestamp, data-modification-timestamp: new-timestamp) -> result<_,error-code>", func(c *cx, a []any) []any {
		return fsResult(c, nil, fsArg(a).mutate(a[2].(string), func(r *os.Root, rel string) error {
			return r.Chtimes(rel, newTimestamp(a[3]), newTimestamp(a[4]))
		}))
	}},
	"filesystem-error-code": {"func(err: borrow<error>) -> option<error-code>", func(c *cx, a []any) []any {
		e, ok := a[0].(*ioError)
		if !ok || e.fsCode == "" {
			return []any{Variant{}}
		}
		return []any{Variant{Case: 1, Val: caseIndex(c.ft.results[0].elem, e.fsCode)}}
	}},
}

// newTimestamp turns a new-timestamp variant into a time (zero: no change).
func newTimestamp(v any) time.Time {
	nt := v.(Variant)
	switch nt.Case {
	case 1:
		return time.Now()
	case 2:
		dt := nt.Val.([]any)
		return time.Unix(int64(dt[0].(uint64)), int64(dt[1].(uint32)))
	}
	return time.Time{}
}

func (d *descriptor) mutate(p string, f func(r *os.Root, rel string) error) error {
	rel, err := d.beneath(p)
	if err != nil {
		return err
	}
	if d.readOnly {
		return fsError("read-only")
	}
	return f(d.root, rel)
}

type appendWriter struct{ f *os.File }

func (w appendWriter) Write(b []byte) (int, error) {
	fi, err := w.f.Stat()
	if err != nil {
		return 0, err
	}
	return w.f.WriteAt(b, fi.Size())
}
