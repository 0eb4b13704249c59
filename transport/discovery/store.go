package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// A DHT server keeps what strangers ask it to (provider records, values),
// in memory: the store is capped so a flood of records costs a bounded
// amount. Past the cap new records are refused, which the sender sees as a
// failed store, and records already kept still expire by the DHT's own
// garbage collection. A client keeps only what its own lookups cache.
const (
	maxStoreRecords = 1 << 16
	maxStoreBytes   = 64 << 20
)

// errStoreFull is the refusal of a record past the store's cap.
var errStoreFull = errors.New("the DHT record store is full")

// boundedStore is an in-memory datastore holding at most maxRecords
// records of maxBytes in all (keys and values).
type boundedStore struct {
	maxRecords int
	maxBytes   int

	mu    sync.Mutex
	inner *ds.MapDatastore
	count int
	bytes int
}

var _ ds.Batching = (*boundedStore)(nil)

func newBoundedStore(maxRecords, maxBytes int) *boundedStore {
	return &boundedStore{maxRecords: maxRecords, maxBytes: maxBytes, inner: ds.NewMapDatastore()}
}

func recordSize(key ds.Key, value []byte) int { return len(key.String()) + len(value) }

// Put stores value under key unless that takes the store past its cap.
func (s *boundedStore) Put(ctx context.Context, key ds.Key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.inner.Get(ctx, key)
	replacing := err == nil
	grow, added := recordSize(key, value), 1
	if replacing {
		grow, added = grow-recordSize(key, old), 0
	}
	if s.count+added > s.maxRecords || s.bytes+grow > s.maxBytes {
		return fmt.Errorf("%w (%d records, %d bytes; at most %d and %d)", errStoreFull, s.count, s.bytes, s.maxRecords, s.maxBytes)
	}
	// The caller may reuse its slice; the store keeps its own copy.
	if err := s.inner.Put(ctx, key, append([]byte(nil), value...)); err != nil {
		return err
	}
	s.count += added
	s.bytes += grow
	return nil
}

// Delete removes key's record, if any.
func (s *boundedStore) Delete(ctx context.Context, key ds.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, err := s.inner.Get(ctx, key); err == nil {
		s.count--
		s.bytes -= recordSize(key, old)
	}
	return s.inner.Delete(ctx, key)
}

// Get returns key's record.
func (s *boundedStore) Get(ctx context.Context, key ds.Key) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.inner.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), v...), nil
}

// Has reports whether key has a record.
func (s *boundedStore) Has(ctx context.Context, key ds.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inner.Has(ctx, key)
}

// GetSize is the size of key's value.
func (s *boundedStore) GetSize(ctx context.Context, key ds.Key) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inner.GetSize(ctx, key)
}

// Query lists the records matching q, as they were when it was called.
func (s *boundedStore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The map store reads every entry before it returns; its results do
	// not touch the map afterwards.
	return s.inner.Query(ctx, q)
}

// Sync has nothing to do: the store is memory only.
func (s *boundedStore) Sync(context.Context, ds.Key) error { return nil }

// Batch groups writes; each still goes through Put's cap.
func (s *boundedStore) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(s), nil }

// Close drops every record.
func (s *boundedStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inner = ds.NewMapDatastore()
	s.count, s.bytes = 0, 0
	return nil
}
