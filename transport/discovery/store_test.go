package discovery

import (
	"context"
	"errors"
	"testing"

	ds "github.com/ipfs/go-datastore"
)

// Records past the cap are refused; replacing or deleting one frees its
// share, so the cap bounds what is kept, not what was ever put.
func TestBoundedStoreCaps(t *testing.T) {
	ctx := context.Background()
	s := newBoundedStore(2, 100)
	if err := s.Put(ctx, ds.NewKey("a"), make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, ds.NewKey("b"), make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, ds.NewKey("c"), make([]byte, 1)); !errors.Is(err, errStoreFull) {
		t.Fatalf("a third record in a store of two: %v, want %v", err, errStoreFull)
	}
	if err := s.Put(ctx, ds.NewKey("a"), make([]byte, 20)); err != nil {
		t.Fatalf("replacing a record: %v", err)
	}
	if err := s.Put(ctx, ds.NewKey("b"), make([]byte, 100)); !errors.Is(err, errStoreFull) {
		t.Fatalf("a record past the byte cap: %v, want %v", err, errStoreFull)
	}
	if err := s.Delete(ctx, ds.NewKey("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, ds.NewKey("c"), make([]byte, 50)); err != nil {
		t.Fatalf("a record after one was deleted: %v", err)
	}
	b, err := s.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Put(ctx, ds.NewKey("d"), make([]byte, 1))
	if err := b.Commit(ctx); !errors.Is(err, errStoreFull) {
		t.Fatalf("a batch past the cap: %v, want %v", err, errStoreFull)
	}
	if ok, _ := s.Has(ctx, ds.NewKey("d")); ok {
		t.Fatal("the refused batch record was kept")
	}
}
