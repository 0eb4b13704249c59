// Package actors is the supervision tree of a Fungi node and every actor in
// it:
//
//	fungi (root supervisor)
//	├── runtime-wasmtime, runtime-docker   one runtimeActor per provider
//	└── services                           serviceRegistry
//	    └── svc-<name>                     one serviceActor per service
//
// Actors own their state and change it only in Receive. Downloads, compiles,
// starts and stops run in goroutines and report back by message, so no
// mailbox waits on I/O longer than a small atomic file write.
//
// Commands from the CLI (and, later, from peers) arrive as the protobuf types
// of package messages. Messages that carry Go values a protobuf cannot (a
// running instance, a progress callback) are the unexported types in
// internal.go and never leave the process.
package actors
