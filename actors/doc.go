// Package actors is the supervision tree of a Fungi node and every actor in
// it, as StartNode spawns them:
//
//	fungi                    rootSupervisor: restarts a child that fails
//	├── runtime-<name>       runtimeActor, one per runtimes.Provider
//	├── services             serviceRegistry: pulls, host ports, the list
//	│   └── svc-<name>-<n>   serviceActor, one per service: its lifecycle
//	├── devices              deviceBook: address book, roles, the trust gate
//	│   └── (child)          peerSession, one per device it dials
//	├── access               accessManager: access entries, local ports
//	│   └── (child)          accessForwarder, one per entry
//	├── relays               relayKeeper (only with a peer network)
//	└── punch                punchKeeper (only when the network punches)
//
// Actors own their state and change it only in Receive. Downloads, compiles,
// starts, stops and dials run in goroutines and report back by message, so
// no mailbox waits on I/O longer than a small atomic file write.
//
// Commands from the CLI and from peers arrive as the protobuf types of
// package messages. Messages that carry Go values a protobuf cannot (a
// running instance, a progress callback) are the unexported types in
// internal.go and never leave the process. docs/ARCHITECTURE.md draws the
// flows through the tree.
package actors
