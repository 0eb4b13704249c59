package pair

import "time"

// What the external tests (package pair_test), which start real hosts
// with transport, need of this package's insides.

// IsLoopback is isLoopback.
var IsLoopback = isLoopback

// BusyGuestWindow is busyGuestWindow.
const BusyGuestWindow = busyGuestWindow

// SlotsTaken is how many strangers hold a slot on p, guests and those in
// to hear that pairing is busy.
func (p *Pairing) SlotsTaken() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.guests)
}

// SetWindows sets how long a guest, and a stranger in only to hear that
// pairing is busy, may stay.
func (p *Pairing) SetWindows(guest, busy time.Duration) {
	p.mu.Lock()
	p.guestWindow, p.busyWindow = guest, busy
	p.mu.Unlock()
}
