package wasm

import "crypto/rand"

// cryptoRand gives guests real randomness; wazero's default is a fixed,
// deterministic source.
type cryptoRand struct{}

func (cryptoRand) Read(b []byte) (int, error) { return rand.Read(b) }
