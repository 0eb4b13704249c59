// Package names gives attached services names instead of port numbers:
// one loopback HTTP port per node routes http://SERVICE.DEVICE.localhost:PORT/
// by its Host header to the local port of that access entry. Browsers
// resolve every *.localhost name to loopback by themselves, so no resolver
// and no certificate is involved, and the names, unlike the access ports,
// stay the same when an entry is attached again.
package names

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/fungi-go/fungi/messages"
)

// maxLabel is the longest DNS label.
const maxLabel = 63

// Label turns an alias or a service ID into a lower-cased DNS label:
// letters and digits kept, every run of anything else one hyphen, no
// hyphen at either end, at most 63 bytes. What has no letter or digit at
// all becomes fallback.
func Label(s, fallback string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	out := b.String()
	if len(out) > maxLabel {
		out = strings.TrimRight(out[:maxLabel], "-")
	}
	if out == "" {
		return fallback
	}
	return out
}

// Assign sets the Name of every entry: SERVICE.DEVICE, the labels of its
// service ID and of its device's alias (a device without one goes by the
// last 12 characters of its peer ID). Names that would collide are told
// apart deterministically, whatever the order of entries: devices sorted
// by peer ID, the first keeps the plain label and the next get -2, -3, …;
// then likewise services within one device, sorted by service ID. Each
// entry's URL is set too when base (the names port's host:port) is not
// empty.
func Assign(entries []*messages.AccessEntry, base string) {
	byPeer := map[string][]*messages.AccessEntry{}
	aliases := map[string]string{}
	for _, e := range entries {
		byPeer[e.PeerId] = append(byPeer[e.PeerId], e)
		if e.Alias != "" {
			aliases[e.PeerId] = e.Alias
		}
	}
	peers := make([]string, 0, len(byPeer))
	for p := range byPeer {
		peers = append(peers, p)
	}
	slices.Sort(peers)
	devLabels := unique(peers, func(p string) string { return Label(aliases[p], Label(shortID(p), "device")) })
	for _, p := range peers {
		list := byPeer[p]
		ids := make([]string, 0, len(list))
		for _, e := range list {
			ids = append(ids, e.ServiceId)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		svcLabels := unique(ids, func(id string) string { return Label(id, "service") })
		for _, e := range list {
			e.Name = svcLabels[e.ServiceId] + "." + devLabels[p]
			e.Url = ""
			if base != "" {
				e.Url = URL(e.Name, base, e.Path)
			}
		}
	}
}

// unique labels each key (sorted), suffixing -2, -3, … to a label already
// taken by an earlier key.
func unique(keys []string, label func(string) string) map[string]string {
	out := map[string]string{}
	taken := map[string]bool{}
	for _, k := range keys {
		l := label(k)
		name := l
		for n := 2; taken[name]; n++ {
			suffix := "-" + strconv.Itoa(n)
			name = strings.TrimRight(l[:min(len(l), maxLabel-len(suffix))], "-") + suffix
		}
		taken[name] = true
		out[k] = name
	}
	return out
}

func shortID(peerID string) string {
	if len(peerID) > 12 {
		return peerID[len(peerID)-12:]
	}
	return peerID
}

// URL is the address a browser opens name at on the names port at base
// (host:port): the port's host is replaced by NAME.localhost.
func URL(name, base, path string) string {
	_, port, err := net.SplitHostPort(base)
	if err != nil {
		return ""
	}
	if path == "" || path[0] != '/' {
		path = "/"
	}
	return fmt.Sprintf("http://%s.localhost:%s%s", name, port, path)
}

// Lookup finds the entry a Host header (NAME.localhost[:PORT]) names among
// entries that Assign named; ok is false for any other host.
func Lookup(entries []*messages.AccessEntry, host string) (e *messages.AccessEntry, name string, ok bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	name, ok = strings.CutSuffix(host, ".localhost")
	if !ok {
		return nil, "", false
	}
	for _, e := range entries {
		if e.Name == name {
			return e, name, true
		}
	}
	return nil, name, true
}
