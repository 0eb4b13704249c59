// Package version is the version of this build of fungi.
package version

// Version is set at build time with -ldflags "-X .../version.Version=…".
var Version = "0.1.0-dev"
