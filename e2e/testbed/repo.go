package testbed

import (
	"fmt"
	"os"
	"path/filepath"
)

// RepoRoot finds the burstlet repository root (the directory holding deploy/ and e2e/) by
// walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isDir(filepath.Join(dir, "deploy")) && isDir(filepath.Join(dir, "e2e")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no burstlet repository above the working directory")
		}
		dir = parent
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// WithRepoDefaults fills unset paths from the repository layout: bin/ for binaries and
// deploy/rbac/ for burstlet's identity on each plane, deploy/crds/ for its CRDs.
func (c *Config) WithRepoDefaults() error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if c.BinDir == "" {
		c.BinDir = filepath.Join(root, "bin")
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(root, ".state", "testbed")
	}
	if c.ClusterRBAC == "" {
		c.ClusterRBAC = filepath.Join(root, "deploy", "rbac", "cluster.yaml")
	}
	if c.ClusterCRDs == nil {
		if c.ClusterCRDs, err = filepath.Glob(filepath.Join(root, "deploy", "crds", "*.yaml")); err != nil {
			return err
		}
	}
	if c.BackendRBAC == "" {
		c.BackendRBAC = filepath.Join(root, "deploy", "rbac", "backend.yaml")
	}
	// Kubeconfigs written into the state name certificate files by path: make them absolute so
	// they work from any directory.
	for _, p := range []*string{&c.BinDir, &c.StateDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}
