package manifest

import (
	"slices"
	"strings"
	"testing"
)

func TestNetworkConnectIsAnAllowListOfHostPorts(t *testing.T) {
	m, err := Parse([]byte(good + "  network:\n    connect: [\"DB.home.arpa.:5432\", 192.168.1.10:80, \"[fd00::1]:53\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"db.home.arpa:5432", "192.168.1.10:80", "[fd00::1]:53"}
	if !slices.Equal(m.Spec.Network.Connect, want) {
		t.Fatalf("connect = %q, want %q (names in lower case, no final dot)", m.Spec.Network.Connect, want)
	}
	for _, tc := range []struct{ entry, want string }{
		{"db.home.arpa", `line 28, column 15: spec.network.connect[0]: "db.home.arpa" is not host:port`},
		{"db.home.arpa:0", `spec.network.connect[0]: "db.home.arpa:0": the port must be from 1 to 65535`},
		{"0.0.0.0:80", `is not an address a connection can reach`},
		{"http://x:80", `spec.network.connect[0]:`},
	} {
		_, err := Parse([]byte(good + "  network:\n    connect: [\"" + tc.entry + "\"]\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("connect [%s]: %v; want an error containing %q", tc.entry, err, tc.want)
		}
	}
	docker := strings.Replace(good, "runtime: wasmtime", "runtime: docker", 1)
	if _, err := Parse([]byte(docker + "  network: {connect: [\"db:5432\"]}\n")); err == nil || !strings.Contains(err.Error(), "spec.network: is for wasmtime services") {
		t.Errorf("a docker service with spec.network.connect: %v", err)
	}
}
