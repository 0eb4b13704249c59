//go:build !linux

package transport

import (
	"sync"
	"time"
)

// netPollEvery is how often, where there is no netlink, the interface
// addresses are read to find a change.
const netPollEvery = 5 * time.Second

// watchNet compares the interface addresses every netPollEvery.
func watchNet() (<-chan netChange, func(), error) {
	raw := make(chan map[string]bool)
	out := make(chan netChange)
	done := make(chan struct{})
	go func() {
		defer close(raw)
		prev := interfaceIPs()
		t := time.NewTicker(netPollEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-done:
				return
			}
			cur := interfaceIPs()
			lost, changed := map[string]bool{}, len(cur) != len(prev)
			for ip := range prev {
				if !cur[ip] {
					lost[ip], changed = true, true
				}
			}
			prev = cur
			if changed {
				select {
				case raw <- lost:
				case <-done:
					return
				}
			}
		}
	}()
	go settle(raw, out, done)
	var once sync.Once
	return out, func() { once.Do(func() { close(done) }) }, nil
}
