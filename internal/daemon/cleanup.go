package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/internal/home"
)

// removeStaleTemps deletes the temporary files atomicfile.Write leaves when
// the node dies between writing one and renaming it. It must run with the
// home's lock held: the daemon is then the only writer of these folders
// (`fungi init` writes only a new home's first two files, which the
// daemon's own Init has already written), so every such file is stale.
//
// Only the folders fungi itself writes with atomicfile are swept: the
// home's top level (identity, config, address book, access entries), every
// service's folder (manifest, state) and the caches. data/ belongs to the
// guests, whose files may look like anything, and is never entered.
func removeStaleTemps(h *home.Home) error {
	var errs []error
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove the stale temporary file %s: %w; delete it by hand", path, err))
		}
	}

	top, err := os.ReadDir(h.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("look for stale temporary files in %s: %w", h.Dir, err)
	}
	for _, e := range top {
		if e.Type().IsRegular() && atomicfile.IsTemp(e.Name()) {
			remove(filepath.Join(h.Dir, e.Name()))
		}
	}

	for _, root := range []string{h.ServicesDir(), filepath.Join(h.Dir, "cache")} {
		// WalkDir does not follow symbolic links, so a link planted in a
		// service folder cannot lead the sweep elsewhere.
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.Type().IsRegular() && atomicfile.IsTemp(d.Name()) {
				remove(path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("look for stale temporary files in %s: %w", root, err))
		}
	}
	return errors.Join(errs...)
}
