package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/fungi-go/fungi/internal/ui"
)

type uiCmd struct {
	NoBrowser bool `name:"no-browser" help:"Only print the login link."`
	jsonFlag
}

// uiLink is `fungi ui --json`.
type uiLink struct {
	// URL is the one-time login link; it works once, within two minutes.
	URL string `json:"url"`
	// Address is where the dashboard listens.
	Address string `json:"address"`
}

func (c *uiCmd) Run(e *env) error {
	link, addr, err := dashboardLink(e)
	if err != nil {
		return err
	}
	if c.JSON {
		data, err := jsonMarshalIndent(uiLink{URL: link, Address: addr})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", data)
		return err
	}
	fmt.Fprintln(e.stdout, link)
	fmt.Fprintln(e.stderr, "a one-time login link: it works once, within two minutes; run `fungi ui` again for another")
	if !c.NoBrowser {
		openBrowser(link)
	}
	return nil
}

// dashboardLink mints a login link for the running daemon's dashboard
// from the token in the home: only whoever may read the home may log in.
func dashboardLink(e *env) (link, addr string, err error) {
	data, err := os.ReadFile(e.home.UIAddrPath())
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("the dashboard is not running on %s: start the node with `%s`, with ui.enabled: true in %s; if the daemon logged \"dashboard off\", set ui.listen to a free port",
			e.home.Dir, e.daemonCommand(), e.home.ConfigPath())
	}
	if err != nil {
		return "", "", err
	}
	addr = strings.TrimSpace(string(data))
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", "", fmt.Errorf("the dashboard does not answer on %s (%v): the daemon may have died; start it again with `%s`", addr, err, e.daemonCommand())
	}
	conn.Close()
	tok, err := os.ReadFile(e.home.UITokenPath())
	if err != nil {
		return "", "", fmt.Errorf("reading the dashboard's token: %w", err)
	}
	return ui.LoginLink(strings.TrimSpace(string(tok)), addr, time.Now()), addr, nil
}
