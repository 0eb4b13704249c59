package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ResolvedMount is a mount whose host folder exists and was checked.
type ResolvedMount struct {
	HostPath    string
	RuntimePath string
	// ReadOnly is the manifest's readOnly: the service may change nothing.
	ReadOnly bool
}

// ResolveMounts substitutes ${APP_HOME} and checks, after following the
// symlinks of the part of each host path that already exists, that it lies
// inside appHome or inside one of the folders the node's owner allowed. Only
// then does it create the missing folders, and it creates them through an
// os.Root opened on the folder that holds them, so a link swapped in on the
// way cannot carry the creation outside.
func (m *Manifest) ResolveMounts(appHome string, allowed []string) ([]ResolvedMount, error) {
	if err := os.MkdirAll(appHome, 0o755); err != nil {
		return nil, fmt.Errorf("create the data folder %s: %w", appHome, err)
	}
	roots := append([]string{appHome}, allowed...)
	var realRoots []string
	for _, r := range roots {
		if real, err := filepath.EvalSymlinks(r); err == nil {
			realRoots = append(realRoots, real)
		}
	}
	out := make([]ResolvedMount, 0, len(m.Spec.Mounts))
	for i, mt := range m.Spec.Mounts {
		field := fmt.Sprintf("spec.mounts[%d].hostPath", i)
		host := filepath.FromSlash(mt.HostPath)
		if rel, ok := strings.CutPrefix(mt.HostPath, AppHomeVar); ok {
			host = filepath.Join(appHome, filepath.FromSlash(rel))
		}
		host = filepath.Clean(host)
		if !within(host, roots) {
			return nil, fmt.Errorf("%s: %s is outside the service's data folder %s and outside the folders allowed in config.yaml (mounts.allowed)", field, host, appHome)
		}
		target, err := realTarget(host, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		root := containingRoot(target, realRoots)
		if root == "" && target == host {
			return nil, fmt.Errorf("%s: %s is under an allowed folder that does not exist; create that folder first, then start again", field, host)
		}
		if root == "" {
			return nil, fmt.Errorf("%s: %s is a link to %s, outside the service's data folder and outside the folders allowed in config.yaml (mounts.allowed); fungi does not follow links out of them", field, host, target)
		}
		if err := mkdirAllIn(root, target); err != nil {
			return nil, fmt.Errorf("%s: create %s: %w", field, host, err)
		}
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if !within(real, realRoots) {
			return nil, fmt.Errorf("%s: %s is a link to %s, outside the service's data folder and outside the folders allowed in config.yaml (mounts.allowed); fungi does not follow links out of them", field, host, real)
		}
		out = append(out, ResolvedMount{HostPath: real, RuntimePath: mt.RuntimePath, ReadOnly: mt.ReadOnly})
	}
	return out, nil
}

// realTarget is where p leads once the symlinks of its longest existing
// prefix are followed; the missing rest is appended as written. A link that
// dangles counts as existing: its target is what a folder created there
// would be.
func realTarget(p string, hops int) (string, error) {
	if hops > maxLinkHops {
		return "", fmt.Errorf("%s: more than %d links in a row; point the link at a folder", p, maxLinkHops)
	}
	missing := ""
	for dir := p; ; {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return filepath.Join(real, missing), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(dir); lerr == nil {
			// dir exists but leads nowhere: a dangling link. Follow it by
			// hand, one step, so its target is what gets checked.
			link, err := os.Readlink(dir)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(link) {
				link = filepath.Join(filepath.Dir(dir), link)
			}
			target, err := realTarget(filepath.Clean(link), hops+1)
			if err != nil {
				return "", err
			}
			return filepath.Join(target, missing), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", err
		}
		missing = filepath.Join(filepath.Base(dir), missing)
		dir = parent
	}
}

// maxLinkHops bounds how many dangling links realTarget follows by hand.
const maxLinkHops = 40

// containingRoot is the longest of roots that holds p, or "".
func containingRoot(p string, roots []string) string {
	best := ""
	for _, r := range roots {
		if within(p, []string{r}) && len(r) > len(best) {
			best = r
		}
	}
	return best
}

// mkdirAllIn creates target, which lies inside root, without leaving root
// whatever links appear under it meanwhile.
func mkdirAllIn(root, target string) error {
	rel, err := filepath.Rel(root, target)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.MkdirAll(rel, 0o755)
}

func within(p string, roots []string) bool {
	p = filepath.Clean(p)
	for _, r := range roots {
		r = filepath.Clean(r)
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) || r == string(filepath.Separator) {
			return true
		}
	}
	return false
}
