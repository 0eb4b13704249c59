package manifest

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestAllowOutboundHTTPForms(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       OutboundHTTP
	}{
		{"left out", "", OutboundHTTP{}},
		{"false", "  allowOutboundHttp: false\n", OutboundHTTP{}},
		{"true", "  allowOutboundHttp: true\n", OutboundHTTP{Internet: true}},
		{"empty list", "  allowOutboundHttp: []\n", OutboundHTTP{}},
		{"list", "  allowOutboundHttp:\n    - API.Example.com.\n    - api.example.com:443\n    - 127.0.0.1\n    - 192.168.1.10:8123\n    - 192.168.1.0/24\n    - fd00::1\n    - \"[fd00::2]:8080\"\n    - fe80::/10\n",
			OutboundHTTP{Allow: []OutboundTarget{
				{Name: "api.example.com"},
				{Name: "api.example.com", Port: 443},
				{Network: netip.MustParsePrefix("127.0.0.1/32")},
				{Network: netip.MustParsePrefix("192.168.1.10/32"), Port: 8123},
				{Network: netip.MustParsePrefix("192.168.1.0/24")},
				{Network: netip.MustParsePrefix("fd00::1/128")},
				{Network: netip.MustParsePrefix("fd00::2/128"), Port: 8080},
				{Network: netip.MustParsePrefix("fe80::/10")},
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(good + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Spec.AllowOutboundHTTP; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAllowOutboundHTTPRoundTrips(t *testing.T) {
	m, err := Parse([]byte(good + "  allowOutboundHttp: [api.example.com:443, 10.0.0.0/8, 127.0.0.1, \"[::1]:8080\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("the marshalled manifest does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back.Spec.AllowOutboundHTTP, m.Spec.AllowOutboundHTTP) {
		t.Fatalf("round trip gave %+v, want %+v", back.Spec.AllowOutboundHTTP, m.Spec.AllowOutboundHTTP)
	}
	if !strings.Contains(string(out), "- '[::1]:8080'") || !strings.Contains(string(out), "- 127.0.0.1\n") {
		t.Fatalf("entries are not written as a manifest spells them:\n%s", out)
	}
}

func TestAllowOutboundHTTPRefusesWithPosition(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"text", "  allowOutboundHttp: yes-please\n", "line 27, column 22: spec.allowOutboundHttp: must be true (the public internet), false, or a list"},
		{"number", "  allowOutboundHttp: 1\n", "line 27, column 22: spec.allowOutboundHttp: must be true (the public internet), false, or a list of host names, addresses and networks, e.g. [api.example.com, 192.168.1.10, 10.0.0.0/8]; found a number (1)"},
		{"mapping", "  allowOutboundHttp: {host: x}\n", "line 27, column 22: spec.allowOutboundHttp: must be true"},
		{"url", "  allowOutboundHttp:\n    - https://api.example.com/v1\n", `line 28, column 7: spec.allowOutboundHttp[0]: "https://api.example.com/v1" is not a host`},
		{"wildcard", "  allowOutboundHttp: [\"*.example.com\"]\n", `line 27, column 23: spec.allowOutboundHttp[0]: "*.example.com": wildcards are not supported`},
		{"host bits", "  allowOutboundHttp: [ok.example.com, 192.168.1.5/24]\n", `line 27, column 39: spec.allowOutboundHttp[1]: "192.168.1.5/24" has bits set past its prefix length; write the network 192.168.1.0/24, or the single address 192.168.1.5`},
		{"bad prefix", "  allowOutboundHttp: [10.0.0.0/33]\n", `spec.allowOutboundHttp[0]: "10.0.0.0/33" is not a network`},
		{"network port", "  allowOutboundHttp: [\"10.0.0.0/8:80\"]\n", `spec.allowOutboundHttp[0]: "10.0.0.0/8:80" is not a network`},
		{"port range", "  allowOutboundHttp: [\"api.example.com:70000\"]\n", `"api.example.com:70000": the port must be from 1 to 65535`},
		{"bad name", "  allowOutboundHttp: [api_example.com]\n", `"api_example.com" is not a host name, an address or a network: use letters, digits, hyphens and dots`},
		{"short address", "  allowOutboundHttp: [127.1]\n", `"127.1" is not a host name, an address or a network: it looks like an incomplete address`},
		{"zone", "  allowOutboundHttp: [\"fe80::1%eth0\"]\n", `an address with a zone cannot be listed`},
		{"empty", "  allowOutboundHttp: [\"\"]\n", "spec.allowOutboundHttp[0]: is empty"},
		{"nested", "  allowOutboundHttp: [[a]]\n", "spec.allowOutboundHttp[0]: must be a host name, an address or a network, found a list"},
		{"bool entry", "  allowOutboundHttp: [true]\n", "spec.allowOutboundHttp[0]: must be a host name, an address or a network, found a boolean (true)"},
		{"too many", "  allowOutboundHttp: [" + strings.TrimSuffix(strings.Repeat("a.example, ", MaxOutboundHosts+1), ", ") + "]\n", "line 27, column 22: spec.allowOutboundHttp: has 257 hosts; a manifest may have at most 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(good + tc.yaml))
			requirePositions(t, err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestAllowOutboundHTTPListIsForWasmtime(t *testing.T) {
	_, err := Parse([]byte(externalSSH + "  allowOutboundHttp: [api.example.com]\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.allowOutboundHttp: is for wasmtime services") {
		t.Fatalf("a list on an external service: %v", err)
	}
}
