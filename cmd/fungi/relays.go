package main

import (
	"fmt"

	"github.com/fungi-go/fungi/internal/config"
)

// relayAddCmd adds a relay to config.yaml's relays; the running daemon
// takes a reservation on it at once.
type relayAddCmd struct {
	jsonFlag
	Addr string `arg:"" placeholder:"MULTIADDR" help:"The relay's address, ending /p2p/<relay id> (as fungi relay prints it)."`
}

func (c *relayAddCmd) Run(e *env) error {
	if _, err := config.Add(e.home.ConfigPath(), "relays", c.Addr); err != nil {
		return err
	}
	return e.applyConfig("relays", c.JSON)
}

type relayRemoveCmd struct {
	jsonFlag
	Addr string `arg:"" placeholder:"MULTIADDR" help:"A relay address in config.yaml's relays."`
}

func (c *relayRemoveCmd) Run(e *env) error {
	removed, err := config.Remove(e.home.ConfigPath(), "relays", c.Addr)
	if err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("%s is not in relays; `fungi relay list` shows them", c.Addr)
	}
	return e.applyConfig("relays", c.JSON)
}

type relayListCmd struct{ jsonFlag }

func (c *relayListCmd) Run(e *env) error {
	return printList(e, "relays", c.JSON, "no relays yet; this node is reached directly (add one with: fungi relay add MULTIADDR)")
}
