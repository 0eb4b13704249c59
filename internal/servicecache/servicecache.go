// Package servicecache keeps the last service list each device answered,
// so a device that is offline still shows what it runs, marked with the
// age of what is known. The cache is a file in the home, written
// atomically and bounded in devices, services and bytes.
package servicecache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/messages"
)

// Bounds of the cache: a device list is a person's own devices, a
// device's services a handful; anything past these is cut, not stored.
const (
	MaxDevices           = 256
	MaxServicesPerDevice = 512
	MaxFileBytes         = 16 << 20
)

// Entry is what the cache holds of one device.
type Entry struct {
	Alias    string
	CachedAt time.Time
	Services *messages.ServiceList
}

// Cache is the devices' last answers, loaded from and saved to one file.
// It is safe for concurrent use: the answers of several devices arrive at
// once.
type Cache struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]Entry
}

type fileEntry struct {
	Alias    string          `json:"alias,omitempty"`
	CachedAt time.Time       `json:"cachedAt"`
	Services json.RawMessage `json:"services"` // a messages.ServiceList in protojson
}

// Open loads the cache at path; a missing file is an empty cache, and a
// file that does not load is set aside as empty (it is only a cache), with
// the reason returned for the log.
func Open(path string) (*Cache, error) {
	c := &Cache{path: path, now: time.Now, entries: map[string]Entry{}}
	data, err := readBounded(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("device service cache %s not read, starting empty: %w", path, err)
	}
	var file map[string]fileEntry
	if err := json.Unmarshal(data, &file); err != nil {
		return c, fmt.Errorf("device service cache %s is not valid JSON, starting empty: %w", path, err)
	}
	for id, fe := range file {
		if len(c.entries) >= MaxDevices {
			break
		}
		list := &messages.ServiceList{}
		if err := protojson.Unmarshal(fe.Services, list); err != nil {
			continue
		}
		c.entries[id] = Entry{Alias: fe.Alias, CachedAt: fe.CachedAt, Services: bound(list)}
	}
	return c, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("it is over the %d bytes a cache may be", MaxFileBytes)
	}
	return data, nil
}

func bound(list *messages.ServiceList) *messages.ServiceList {
	if len(list.Services) > MaxServicesPerDevice {
		list.Services = list.Services[:MaxServicesPerDevice]
	}
	return list
}

// Get is the device's last answer, if any.
func (c *Cache) Get(peerID string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[peerID]
	return e, ok
}

// Put records a device's answer now and saves the cache. When the cache is
// full, the device heard from longest ago makes room.
func (c *Cache) Put(peerID, alias string, list *messages.ServiceList) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[peerID]; !ok && len(c.entries) >= MaxDevices {
		c.evictOldest()
	}
	c.entries[peerID] = Entry{Alias: alias, CachedAt: c.now().UTC(), Services: bound(list)}
	return c.save()
}

// Forget drops devices no longer in the address book.
func (c *Cache) Forget(keep map[string]bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for id := range c.entries {
		if !keep[id] {
			delete(c.entries, id)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return c.save()
}

func (c *Cache) evictOldest() {
	ids := make([]string, 0, len(c.entries))
	for id := range c.entries {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return c.entries[ids[i]].CachedAt.Before(c.entries[ids[j]].CachedAt) })
	delete(c.entries, ids[0])
}

// save writes the cache; c.mu is held.
func (c *Cache) save() error {
	file := make(map[string]fileEntry, len(c.entries))
	for id, e := range c.entries {
		raw, err := protojson.Marshal(e.Services)
		if err != nil {
			return err
		}
		file[id] = fileEntry{Alias: e.Alias, CachedAt: e.CachedAt, Services: raw}
	}
	data, err := json.Marshal(file)
	if err != nil {
		return err
	}
	if len(data) > MaxFileBytes {
		return fmt.Errorf("the device service cache would be %d bytes, over %d; not saved", len(data), MaxFileBytes)
	}
	return atomicfile.Write(c.path, data, 0o600)
}
