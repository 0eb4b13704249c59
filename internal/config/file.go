package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/transport/discovery"
)

// Config is the node's config.yaml.
type Config struct {
	// Listen is where the node accepts peers (multiaddrs).
	Listen []string `yaml:"listen"`
	// MDNS announces the node on the LAN and notes the peers seen there.
	MDNS bool `yaml:"mdns"`
	// PortMapping asks the LAN's gateway (UPnP, NAT-PMP) to forward the
	// node's port, so peers outside can dial it. Off for nodes that must
	// send nothing off the machine, such as test and demo daemons.
	PortMapping bool `yaml:"portMapping"`
	// Relays are circuit relays (multiaddrs ending /p2p/<relay id>) this
	// node keeps a reservation on, so peers that cannot dial it reach it.
	Relays []string `yaml:"relays"`
	// Discovery is how the node finds its devices where they are now.
	Discovery DiscoveryConfig `yaml:"discovery"`
	// Bootstrap are the DHT nodes (multiaddrs ending /p2p/<peer ID>) the
	// node starts from; the default is the public libp2p bootstrap list.
	Bootstrap []string `yaml:"bootstrap"`
	// Relay configures `fungi relay`, when this home runs a relay server.
	Relay  RelayConfig `yaml:"relay"`
	Wasm   WasmConfig  `yaml:"wasm"`
	Mounts struct {
		// Allowed are host folders, besides each service's data folder,
		// that manifests may mount.
		Allowed []string `yaml:"allowed"`
	} `yaml:"mounts"`
	External ExternalConfig `yaml:"external"`
	UI       UIConfig       `yaml:"ui"`
	// Names is the local HTTP port that reaches attached web services by
	// name (internal/names).
	Names NamesConfig `yaml:"names"`
	// Log is the daemon's own log (HOME/logs/daemon.log).
	Log LogConfig `yaml:"log"`
}

// DiscoveryConfig is the DHT's part of config.yaml.
type DiscoveryConfig struct {
	// DHT finds devices by peer ID through the Kademlia DHT, and tells it
	// where this node is: its peer ID and addresses, nothing else. Off,
	// the node publishes nothing and reaches devices only at the
	// addresses it was given, on the LAN and through its relays.
	DHT bool `yaml:"dht"`
}

// LogConfig is the daemon log's part of config.yaml.
type LogConfig struct {
	// Level is debug, info, warn or error; `fungi daemon --log-level`
	// overrides it.
	Level string `yaml:"level"`
}

// UIConfig is the web dashboard's part of config.yaml.
type UIConfig struct {
	// Enabled serves the dashboard; off, the node serves no HTTP at all.
	Enabled bool `yaml:"enabled"`
	// Listen is a loopback host:port; a port of 0 picks a free one.
	Listen string `yaml:"listen"`
}

// DefaultUIPort is where the dashboard listens unless told otherwise.
const DefaultUIPort = 4434

// NamesConfig is the names port's part of config.yaml: one loopback HTTP
// port where http://SERVICE.DEVICE.localhost:PORT/ reaches an attached web
// service.
type NamesConfig struct {
	// Enabled serves the names port.
	Enabled bool `yaml:"enabled"`
	// Listen is a loopback host:port; a port of 0 picks a free one.
	Listen string `yaml:"listen"`
}

// DefaultNamesPort is where the names port listens unless told otherwise:
// fixed, so names stay valid bookmarks.
const DefaultNamesPort = 8479

// ExternalConfig is what services that already run may publish.
type ExternalConfig struct {
	// AllowedHosts are hosts besides loopback (IP addresses, CIDR
	// networks, host names) that `runtime: external` services may name.
	AllowedHosts []string `yaml:"allowedHosts"`
}

// RelayConfig is the relay server's part of config.yaml.
type RelayConfig struct {
	Listen []string `yaml:"listen"`
	// Allow are the peer IDs the relay serves; `--open` serves anyone.
	Allow           []string      `yaml:"allow"`
	MaxReservations int           `yaml:"maxReservations"`
	MaxCircuits     int           `yaml:"maxCircuits"`
	ReservationTTL  time.Duration `yaml:"reservationTTL"`
	CircuitDuration time.Duration `yaml:"circuitDuration"`
	CircuitBytes    int64         `yaml:"circuitBytes"`
}

// DefaultRelayPort is where `fungi relay` listens unless told otherwise.
const DefaultRelayPort = 4001

// WasmConfig holds the limits of the wasm runtime.
type WasmConfig struct {
	MemoryLimitMB  uint32        `yaml:"memoryLimitMB"`
	RequestTimeout time.Duration `yaml:"requestTimeout"`
	MaxConcurrency int           `yaml:"maxConcurrency"`
}

// DefaultPort is the port a node listens on unless told otherwise; a fixed
// port keeps the addresses in other nodes' address books valid.
const DefaultPort = 4433

// DefaultConfig is what `fungi init` writes.
func DefaultConfig() Config {
	c := Config{
		Listen:      defaultListen(),
		MDNS:        true,
		PortMapping: true,
		Relays:      []string{},
		Discovery:   DiscoveryConfig{DHT: true},
		Bootstrap:   discovery.DefaultBootstrap(),
		Relay: RelayConfig{
			Listen: []string{
				fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultRelayPort),
				fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultRelayPort),
			},
			Allow:           []string{},
			MaxReservations: 128,
			// Circuits at once per peer (libp2p's default is 16). A person's
			// admin node reaches each of their devices through a relay until a
			// hole is punched, and the relayed connection stays as the fallback:
			// in the 50-device fleet test one admin held ~17 circuits on each of
			// three relays, and at 16 the 17th device was unreachable.
			MaxCircuits:     64,
			ReservationTTL:  time.Hour,
			CircuitDuration: time.Hour,
			CircuitBytes:    1 << 30,
		},
		Wasm: WasmConfig{MemoryLimitMB: 256, RequestTimeout: 30 * time.Second, MaxConcurrency: 16},
		Log:  LogConfig{Level: "info"},
	}
	c.Mounts.Allowed = []string{}
	c.External.AllowedHosts = []string{}
	c.UI = UIConfig{Enabled: true, Listen: fmt.Sprintf("127.0.0.1:%d", DefaultUIPort)}
	c.Names = NamesConfig{Enabled: true, Listen: fmt.Sprintf("127.0.0.1:%d", DefaultNamesPort)}
	return c
}

// Load reads the config.yaml at path; a missing file means the defaults.
func Load(path string) (Config, error) {
	c := DefaultConfig()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
