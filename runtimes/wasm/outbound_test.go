package wasm

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
	"github.com/fungi-go/fungi/runtimes/wasm/component"
)

// TestComponentConfigCarriesOutboundPolicy: the manifest's
// allowOutboundHttp reaches the component host as it was written, and a
// manifest that allows nothing still names its key in refusals.
func TestComponentConfigCarriesOutboundPolicy(t *testing.T) {
	const head = "apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: fetcher}\nspec:\n  runtime: wasmtime\n  source: {file: fetcher.wasm}\n  ports: [{name: http}]\n"
	tests := []struct {
		name, yaml string
		want       *component.OutboundPolicy
	}{
		{"left out", "", &component.OutboundPolicy{Setting: "spec.allowOutboundHttp"}},
		{"true", "  allowOutboundHttp: true\n", &component.OutboundPolicy{Internet: true, Setting: "spec.allowOutboundHttp"}},
		{"list", "  allowOutboundHttp: [api.example.com:443, 127.0.0.1, 192.168.1.0/24]\n", &component.OutboundPolicy{Setting: "spec.allowOutboundHttp", Allow: []component.OutboundRule{
			{Name: "api.example.com", Port: 443},
			{Network: netip.MustParsePrefix("127.0.0.1/32")},
			{Network: netip.MustParsePrefix("192.168.1.0/24")},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := manifest.Parse([]byte(head + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := componentConfig(runtimes.InstanceSpec{Name: "fetcher", Manifest: m}).Outbound
			if got == nil || got.Internet != tc.want.Internet || got.Setting != tc.want.Setting || !reflect.DeepEqual(got.Allow, tc.want.Allow) {
				t.Fatalf("policy %+v, want %+v", got, tc.want)
			}
		})
	}
}
