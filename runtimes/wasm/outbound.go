package wasm

import (
	"github.com/fungi-go/fungi/runtimes/manifest"
	"github.com/fungi-go/fungi/runtimes/wasm/component"
)

// outboundSetting is the manifest key a refused request's log line names.
const outboundSetting = "spec.allowOutboundHttp"

// outboundPolicy is where a service's components may send HTTP requests,
// as its manifest says. It is never nil, so that a refusal names the
// manifest key even when the manifest allows nothing.
func outboundPolicy(o manifest.OutboundHTTP) *component.OutboundPolicy {
	p := &component.OutboundPolicy{Internet: o.Internet, Setting: outboundSetting}
	for _, t := range o.Allow {
		p.Allow = append(p.Allow, component.OutboundRule(t))
	}
	return p
}
