package manifest

// Document is a manifest as a program writes one for a person to read and
// Parse to load: `fungi run` and the conversion of a service/v1 file fill
// it. It has only the fields such a writer sets, in the order a person
// would write them, and leaves out each one that is empty (but metadata,
// runtime and source), so the file says what was asked and no more; the
// defaults are Parse's. Manifest, with every field, is what Parse makes of
// it.
type Document struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       struct {
		Runtime string `yaml:"runtime"`
		Expose  struct {
			Enabled   bool      `yaml:"enabled"`
			ServiceID string    `yaml:"serviceId,omitempty"`
			Transport Transport `yaml:"transport,omitempty"`
			Usage     struct {
				Kind string `yaml:"kind"`
				Path string `yaml:"path,omitempty"`
			} `yaml:"usage"`
		} `yaml:"expose,omitempty"`
		Source struct {
			Image  string `yaml:"image,omitempty"`
			URL    string `yaml:"url,omitempty"`
			File   string `yaml:"file,omitempty"`
			SHA256 string `yaml:"sha256,omitempty"`
			Host   string `yaml:"host,omitempty"`
		} `yaml:"source"`
		Ports   []DocumentPort    `yaml:"ports,omitempty"`
		Mounts  []DocumentMount   `yaml:"mounts,omitempty"`
		Env     map[string]string `yaml:"env,omitempty"`
		Command []string          `yaml:"command,omitempty"`
		Restart string            `yaml:"restart,omitempty"`
	} `yaml:"spec"`
}

// DocumentPort is a port of a Document. A zero HostPort is left out (an
// external service has none), where Port's would read "auto".
type DocumentPort struct {
	Name        string   `yaml:"name"`
	HostPort    HostPort `yaml:"hostPort,omitempty"`
	ServicePort int      `yaml:"servicePort,omitempty"`
	Protocol    string   `yaml:"protocol"`
}

// DocumentMount is a mount of a Document; a writer asks for no read-only
// mount, so the file does not mention it.
type DocumentMount struct {
	HostPath    string `yaml:"hostPath"`
	RuntimePath string `yaml:"runtimePath"`
}
