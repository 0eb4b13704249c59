package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fungi-go/fungi/messages"
)

// listAllDevices prints every device's services in one table.
func (e *env) listAllDevices(refresh, asJSON bool) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.AllDeviceServices(ctx, &messages.DeviceServicesRequest{Refresh: refresh})
		if err != nil {
			return err
		}
		if asJSON {
			return printJSONList(e.stdout, res.Devices)
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "DEVICE\tSERVICE\tSTATE\tPORTS\tACCESS")
		for _, dev := range humanSafe(res).Devices {
			name := dev.Alias
			switch {
			case dev.Self:
				name = "this node"
			case name == "":
				name = dev.PeerId
			}
			state := func(s string) string { return s }
			if !dev.Live {
				age := "never answered"
				if dev.CachedAt != "" {
					age = "cached " + ageText(time.Duration(dev.AgeSeconds)*time.Second) + " ago"
				}
				name += " (offline, " + age + ")"
				state = func(s string) string { return s + "?" }
			}
			if len(dev.Services) == 0 {
				fmt.Fprintf(w, "%s\t-\t-\t-\t-\n", name)
				continue
			}
			for _, s := range dev.Services {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", name, s.Name, state(s.State), portsText(s), accessText(dev.Access, s))
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for _, dev := range humanSafe(res).Devices {
			if !dev.Live && dev.Error != "" {
				fmt.Fprintf(e.stderr, "%s: %s\n", firstNonEmptyString(dev.Alias, dev.PeerId), dev.Error)
			}
		}
		return nil
	})
}

// accessText is this node's local address for a service of the device,
// or "-".
func accessText(entries []*messages.AccessEntry, s *messages.ServiceInfo) string {
	id := s.Name
	if x := s.Expose; x != nil && x.ServiceId != "" {
		id = x.ServiceId
	}
	for _, en := range entries {
		if en.ServiceId != id {
			continue
		}
		var parts []string
		for _, p := range en.Ports {
			parts = append(parts, p.Name+" "+p.LocalAddress)
		}
		return strings.Join(parts, ", ")
	}
	return "-"
}

// ageText is an age in the largest whole unit: 42s, 5m, 3h, 2d.
func ageText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func firstNonEmptyString(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
