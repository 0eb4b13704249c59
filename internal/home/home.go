// Package home is the layout of a node's folder (by default ~/.fungi): its
// identity, config, socket, services, data folders and caches. What
// config.yaml holds is package config's; home only says where it is.
package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/internal/config"
)

// Home is one node's folder.
type Home struct {
	Dir string
}

// Default is ~/.fungi, or $FUNGI_DIR when set (Kong applies that one).
func Default() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".fungi")
	}
	return ".fungi"
}

// Open returns the home at dir (made absolute), without creating anything.
func Open(dir string) (*Home, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Home{Dir: abs}, nil
}

// KeyPath is the node's private key (mode 0600), its identity on the network.
func (h *Home) KeyPath() string { return filepath.Join(h.Dir, "identity.key") }

// ConfigPath is config.yaml, whose contents package config describes.
func (h *Home) ConfigPath() string { return filepath.Join(h.Dir, "config.yaml") }

// SocketPath is the CLI API's Unix socket: whoever may open it may run the node.
func (h *Home) SocketPath() string { return filepath.Join(h.Dir, "fungi.sock") }

// LockPath is held by the running daemon, so a second one on this home refuses to start.
func (h *Home) LockPath() string { return filepath.Join(h.Dir, "daemon.lock") }

// ServicesDir holds one folder per added service.
func (h *Home) ServicesDir() string { return filepath.Join(h.Dir, "services") }

// ServiceDir is the folder of service n: its manifest and state.
func (h *Home) ServiceDir(n string) string { return filepath.Join(h.Dir, "services", n) }

// ServiceLog is the log of service n: its output and what the node did with it.
func (h *Home) ServiceLog(n string) string { return filepath.Join(h.ServiceDir(n), "service.log") }

// DataDir is service n's own data folder, kept when the service is removed.
func (h *Home) DataDir(n string) string { return filepath.Join(h.Dir, "data", n) }

// CacheDir holds what can be fetched or learnt again, by kind (wasm modules, device-services).
func (h *Home) CacheDir(kind string) string { return filepath.Join(h.Dir, "cache", kind) }

// UITokenPath is the dashboard's secret (mode 0600): whoever reads it may
// use the dashboard, as whoever opens the socket may use the CLI API.
func (h *Home) UITokenPath() string { return filepath.Join(h.Dir, "ui-token") }

// UIAddrPath holds the address the running daemon's dashboard listens on;
// `fungi ui` reads it. It is removed when the daemon stops.
func (h *Home) UIAddrPath() string { return filepath.Join(h.Dir, "ui.addr") }

// NamesAddrPath holds the names port's host:port while the daemon serves
// it (internal/names).
func (h *Home) NamesAddrPath() string { return filepath.Join(h.Dir, "names.addr") }

// Initialized reports whether the home has an identity.
func (h *Home) Initialized() bool {
	_, err := os.Stat(h.KeyPath())
	return err == nil
}

// Init creates the folder, an Ed25519 identity and the default config, each
// only if missing. It reports whether it created the identity.
func (h *Home) Init() (created bool, err error) {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return false, fmt.Errorf("create %s: %w", h.Dir, err)
	}
	// MkdirAll leaves an existing folder as it was; the home holds the
	// identity key and the API socket, so only its owner may look in.
	if err := os.Chmod(h.Dir, 0o700); err != nil {
		return false, fmt.Errorf("make %s private (mode 0700): %w", h.Dir, err)
	}
	if !h.Initialized() {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			return false, err
		}
		raw, err := crypto.MarshalPrivateKey(priv)
		if err != nil {
			return false, err
		}
		if err := atomicfile.Write(h.KeyPath(), raw, 0o600); err != nil {
			return false, err
		}
		created = true
	}
	if _, err := os.Stat(h.ConfigPath()); errors.Is(err, os.ErrNotExist) {
		data, _ := yaml.Marshal(config.DefaultConfig())
		header := "# fungi node configuration; see README.md for every key.\n"
		if err := atomicfile.Write(h.ConfigPath(), append([]byte(header), data...), 0o600); err != nil {
			return created, err
		}
	}
	return created, nil
}

// Identity reads the node's private key.
func (h *Home) Identity() (crypto.PrivKey, peer.ID, error) {
	raw, err := os.ReadFile(h.KeyPath())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("no identity in %s: run `fungi init` first", h.Dir)
		}
		return nil, "", err
	}
	priv, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%s is not a valid identity key: %w", h.KeyPath(), err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	return priv, id, err
}

// LoadConfig reads the home's config.yaml (see config.Load); a missing
// file means the defaults.
func (h *Home) LoadConfig() (config.Config, error) { return config.Load(h.ConfigPath()) }
