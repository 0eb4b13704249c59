package manifest

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// ExternalOptions describe a service that already runs on this host or the
// LAN, for `fungi service expose`.
type ExternalOptions struct {
	Name        string
	Host        string // "" is 127.0.0.1
	Port        int
	Usage       string // web, ssh, tcp or raw; "" guesses from the port
	DisplayName string
}

// External writes the manifest of an existing service, exposed in the
// catalog, and checks it with the same rules as any pulled manifest, so
// what `service expose` registers is exactly what a hand-written file would.
func External(o ExternalOptions) ([]byte, error) {
	usage := o.Usage
	if usage == "" {
		usage = guessUsage(o.Port)
	}
	portName := usage
	switch usage {
	case "web":
		portName = "http"
	case "raw":
		portName = "tcp"
	}
	spec := map[string]any{
		"runtime": RuntimeExternal,
		"expose": map[string]any{
			"enabled":   true,
			"transport": map[string]any{"kind": "tcp"},
			"usage":     map[string]any{"kind": usage},
		},
		"ports": []any{map[string]any{"name": portName, "servicePort": o.Port, "protocol": "tcp"}},
	}
	if o.DisplayName != "" {
		spec["expose"].(map[string]any)["displayName"] = o.DisplayName
	}
	if o.Host != "" {
		spec["source"] = map[string]any{"host": o.Host}
	}
	doc := map[string]any{
		"apiVersion": APIVersion,
		"kind":       Kind,
		"metadata":   map[string]any{"name": o.Name},
		"spec":       spec,
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	text := "# written by `fungi service expose`: a service that already runs, published as it is\n" + string(out)
	if _, err := Parse([]byte(text)); err != nil {
		return nil, fmt.Errorf("%s", strings.Replace(err.Error(), "invalid manifest", "cannot expose it", 1))
	}
	return []byte(text), nil
}

func guessUsage(port int) string {
	switch port {
	case 22:
		return "ssh"
	case 80, 443, 8080, 8000, 8123, 8384, 3000, 5000, 9000:
		return "web"
	}
	return "tcp"
}
