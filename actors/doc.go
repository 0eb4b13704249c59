// Package actors is the supervision tree of a Fungi node and every actor in
// it. StartNode spawns this tree (names as protoactor shows them; $n is a
// child protoactor numbers):
//
//	fungi                     rootSupervisor (node.go)
//	├── runtime-<runtime>     runtimeActor, one per runtimes.Provider
//	├── services              serviceRegistry: pulls, host ports, the list,
//	│   │                     the catalog, access resolution
//	│   └── svc-<name>-$n     serviceActor, one per service: its lifecycle
//	├── devices               deviceBook: address book, roles, the trust gate
//	│   └── $n                peerSession, one per device it dials (back)
//	├── access                accessManager: access entries, local ports
//	│   └── $n                accessForwarder, one per listening entry
//	├── relays                relayKeeper (only with a peer network)
//	└── punch                 punchKeeper (only when the network punches)
//
// Supervision: fungi, services, devices and access restart a child that
// panics, in place and with the same PID, under the one strategy of
// supervision() (supervision.go); a child that keeps failing is stopped.
// A restarted actor rebuilds what it owns from disk on Started: a service
// actor its record (and brings the service back to its desired state, on
// its ports), the device book devices.json, the access manager access.json.
//
// Who sends what:
//   - The daemon's API and peer control ask through Node: the registry
//     (services), the device book, the access manager and the runtime
//     actors (capabilities). Access streams are admitted from a snapshot
//     the registry publishes (actors/admission.go), without an ask.
//   - The registry forwards start, stop, inspect, remove and apply to a
//     service actor and asks a runtime actor to fetch (fetchArtifact →
//     fetchDone); a service actor asks its runtime actor to start or
//     remove an instance (startInstance → instanceStarted, removeInstance →
//     runtimeRemoved) and reports every state change to the registry
//     (serviceChanged), so list and catalog never ask the services.
//   - The network tells the device book of connections (peerConnected,
//     peerIdentified, peerDisconnected), of LAN peers (mdnsFound) and of
//     address changes (addrsChanged); the book passes peerDisconnected and
//     addrsChanged on to the sessions, which answer with where their device
//     was reached (reachedVia) or which addresses failed (dialFailed).
//     peerDisconnected and addrsChanged go to the relay keeper too.
//   - A config reload sends setRelays to the device book (the gate) and
//     then the relay keeper, and setAllowedMounts to the registry (which
//     passes it to every service actor) and to the runtime actors.
//   - The access forwarders open streams through the AccessDialer; the punch
//     keeper acts on network callbacks and timers of its own.
//
// Actors own their state and change it only in Receive. Downloads, compiles,
// starts, stops and dials run in goroutines and report back by message, so
// no mailbox waits on I/O longer than a small atomic file write.
//
// Commands from the CLI and from peers arrive as the protobuf types of
// package messages. Messages that carry Go values a protobuf cannot (a
// running instance, a progress callback) are the unexported types in
// internal.go and never leave the process.
package actors
