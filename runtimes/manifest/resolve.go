package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ResolvedMount is a mount whose host folder exists and was checked.
type ResolvedMount struct {
	HostPath    string
	RuntimePath string
}

// ResolveMounts substitutes ${APP_HOME}, creates the host folders and checks,
// after following symlinks, that each lies inside appHome or inside one of
// the folders the node's owner allowed.
func (m *Manifest) ResolveMounts(appHome string, allowed []string) ([]ResolvedMount, error) {
	if err := os.MkdirAll(appHome, 0o755); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	roots := []string{appHome}
	roots = append(roots, allowed...)
	var realRoots []string
	for _, r := range roots {
		if real, err := filepath.EvalSymlinks(r); err == nil {
			realRoots = append(realRoots, real)
		}
	}
	out := make([]ResolvedMount, 0, len(m.Spec.Mounts))
	for i, mt := range m.Spec.Mounts {
		host := mt.HostPath
		if rel, ok := strings.CutPrefix(host, AppHomeVar); ok {
			host = filepath.Join(appHome, filepath.FromSlash(rel))
		}
		if !within(host, roots) {
			return nil, fmt.Errorf("spec.mounts[%d].hostPath: %s is outside the service's data folder %s and outside the folders allowed in config.yaml (mounts.allowed)", i, host, appHome)
		}
		if err := os.MkdirAll(host, 0o755); err != nil {
			return nil, fmt.Errorf("spec.mounts[%d].hostPath: create %s: %w", i, host, err)
		}
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return nil, fmt.Errorf("spec.mounts[%d].hostPath: %w", i, err)
		}
		if !within(real, realRoots) {
			return nil, fmt.Errorf("spec.mounts[%d].hostPath: %s is a link to %s, outside the service's data folder; fungi does not follow links out of it", i, host, real)
		}
		out = append(out, ResolvedMount{HostPath: real, RuntimePath: mt.RuntimePath})
	}
	return out, nil
}

func within(p string, roots []string) bool {
	p = filepath.Clean(p)
	for _, r := range roots {
		r = filepath.Clean(r)
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
