package pair_test

import (
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// startHost starts a node's host, with a new gate.
var startHost = transporttest.Starter(transport.NewTrustGate, transport.NewHost)
