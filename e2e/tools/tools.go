//go:build tools

// Package tools pins the binaries the testbed builds from other modules (kwok) so that
// `go build` resolves them at the versions in go.mod. metrics-server builds from a module of its
// own (metrics-server/go.mod): it needs the Kubernetes libraries of its release.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
