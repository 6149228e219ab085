// Package testbed starts the testbed (bin/testbed, built from e2e/) for one benchmark run and
// reads the part of its state.json the drivers need.
package testbed

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Plane is one control plane of the testbed (the cluster, or the backend standing in for CCI).
type Plane struct {
	AdminKubeconfig    string `json:"adminKubeconfig"`
	BurstletKubeconfig string `json:"burstletKubeconfig"`
	KubeletServingCert string `json:"kubeletServingCert"`
	KubeletServingKey  string `json:"kubeletServingKey"`
	Processes          []struct {
		Name string `json:"name"`
		Pid  int    `json:"pid"`
	} `json:"processes"`
}

// State is the part of the testbed's state.json the drivers read.
type State struct {
	Cluster Plane `json:"cluster"`
	Backend Plane `json:"backend"`
}

// Pid is the pid of the plane's process called name (0 if none).
func (p *Plane) Pid(name string) int {
	for _, proc := range p.Processes {
		if proc.Name == name {
			return proc.Pid
		}
	}
	return 0
}

// Load reads the state.json of the testbed whose state directory is stateDir.
func Load(stateDir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
	if err != nil {
		return nil, err
	}
	st := &State{}
	return st, json.Unmarshal(data, st)
}

// Up starts a testbed with its state in stateDir (bin/testbed up) and returns its state and the
// function that stops it and wipes its data. `testbed up` stops whatever testbed its state
// directory records, so a second run with the same directory would silently break the first:
// a lock in stateDir is held until stop, and a second Up fails at once instead.
func Up(bin, stateDir string) (*State, func(), error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, nil, err
	}
	lock, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("another benchmark holds %s: %w", lock.Name(), err)
	}
	tb := filepath.Join(bin, "testbed")
	stop := func() {
		_ = Sh(tb, "down", "--state", stateDir, "--wipe")
		lock.Close()
	}
	if err := Sh(tb, "up", "--state", stateDir); err != nil {
		stop()
		return nil, nil, err
	}
	st, err := Load(stateDir)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return st, stop, nil
}

// Sh runs a command with the driver's stdout and stderr.
func Sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}
