package recordbatch_test

import (
	"crypto/rand"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/fungi-go/fungi/transport/recordbatch"
)

// A node wraps libp2p's TLS transport before handing it to the upgrader;
// peers see plain libp2p TLS under its usual protocol ID.
func ExampleNew() {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		panic(err)
	}
	tlsT, err := libp2ptls.New(libp2ptls.ID, priv, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(recordbatch.New(tlsT).ID())
	// Output: /tls/1.0.0
}
