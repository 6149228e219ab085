// Package testbed starts and stops the local Kubernetes test bed: two real control planes
// (the cluster and a backend standing in for CCI) built from the official Go modules, with
// kwok simulating worker nodes. End-to-end tests, the demo and the benchmarks all use it.
package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Config says what to start.
type Config struct {
	// BinDir holds the `kube` multi-call binary and `kwok`.
	BinDir string
	// StateDir receives kubeconfigs, certificates, logs, data and state.json.
	StateDir string
	// ClusterWorkers are the cluster's ordinary (kwok) nodes.
	ClusterWorkers NodePool
	// BackendFleet are the backend plane's (kwok) nodes: CCI's capacity.
	BackendFleet NodePool
	// ClusterFeatureGates are extra kube-apiserver feature gates for the cluster plane, e.g.
	// "ExtendWebSocketsToKubelet=false" to exercise the SPDY exec path.
	ClusterFeatureGates []string
	// Backend is the backend plane's mode: BackendPlain (also when empty) runs any pod,
	// BackendCCI refuses what CCI refuses (cci.go). CCI configures that mode.
	Backend string
	CCI     CCIOptions
	// ClusterRBAC and BackendRBAC define burstlet's identity on each plane.
	ClusterRBAC, BackendRBAC string
	// ClusterCRDs are the CustomResourceDefinitions burstlet installs in the cluster
	// (deploy/crds/*.yaml), applied to the cluster plane and waited for.
	ClusterCRDs []string
	// Metrics runs metrics-server on both planes (metrics.k8s.io through the aggregation layer,
	// kubectl top): on the backend it scrapes kwok's simulated resource metrics, on the cluster
	// the kwok workers' and the virtual nodes' kubelet APIs. Off by default: it costs a process
	// per plane, a scrape every MetricsResolution and about a second of start.
	Metrics bool
	// KillWithParent ties the components' lifetime to the calling process (tests).
	KillWithParent bool
	// Timeout bounds the whole start.
	Timeout time.Duration
}

// DefaultConfig is the small default test bed: 2 workers of 4 CPU / 16Gi / 110 pods in the
// cluster and a 2-node backend fleet with room for 10,000 pods (and 20Ti of ephemeral storage
// each, as pods normalized for CCI ask for it).
func DefaultConfig(binDir, stateDir string) Config {
	return Config{
		BinDir:   binDir,
		StateDir: stateDir,
		ClusterWorkers: NodePool{Prefix: "kwok-worker", Count: 2, CPU: "4", Memory: "16Gi", Pods: 110,
			Labels: map[string]string{"node-role.kubernetes.io/worker": ""}},
		BackendFleet: NodePool{Prefix: "cci-fleet", Count: 2, CPU: "2000", Memory: "8Ti", Pods: 10000,
			EphemeralStorage: "20Ti", Labels: map[string]string{"node.cci.io/fleet": "true"}},
		Backend: BackendPlain,
		CCI:     DefaultCCIOptions(),
		Timeout: 3 * time.Minute,
	}
}

// Testbed is a running test bed. It is also the content of <state>/state.json.
type Testbed struct {
	StateDir string `json:"stateDir"`
	// Network is the test bed's veth pair and network namespace (network.go): its HostIP is the
	// address nodes that the API servers must proxy to (burstlet's virtual node) use.
	Network  *Network      `json:"network"`
	Cluster  *Plane        `json:"cluster"`
	Backend  *Plane        `json:"backend"`
	Started  time.Time     `json:"started"`
	StartDur time.Duration `json:"startDurationNs"`
}

// NodeIP is the non-loopback address of this machine that the test bed owns (Network.HostIP):
// a node giving it as InternalIP can be reached through the API servers' nodes/<n>/proxy, and a
// process in the root namespace can listen on it (burstlet's --node-ip and kubelet API).
func (tb *Testbed) NodeIP() string {
	if tb.Network == nil {
		return ""
	}
	return tb.Network.HostIP
}

func statePath(stateDir string) string { return filepath.Join(stateDir, "state.json") }

// Up starts both planes in parallel and waits until they are usable. A test bed already
// recorded in the state directory is stopped first. On failure everything started is
// stopped and the error names the component that failed, with its log tail.
func Up(ctx context.Context, cfg Config) (*Testbed, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Minute
	}
	// testbed runs the backend's kwok front (pod streams) and, in CCI mode, its network
	// controller and CCI gateway.
	bins := []string{"kube", "kwok", "testbed"}
	var backendCCI *CCIOptions
	switch cfg.Backend {
	case "", BackendPlain:
	case BackendCCI:
		opts := cfg.CCI
		backendCCI = &opts
	default:
		return nil, fmt.Errorf("unknown backend mode %q (want %s or %s)", cfg.Backend, BackendPlain, BackendCCI)
	}
	if cfg.Metrics {
		bins = append(bins, MetricsServerName)
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("testbed binary missing (run `make testbed-bin`): %w", err)
		}
	}
	if err := Down(cfg.StateDir, true); err != nil {
		return nil, fmt.Errorf("stop previous testbed: %w", err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	network, err := setupNetwork(ctx, cfg.StateDir)
	if err != nil {
		return nil, err
	}

	specs := []PlaneSpec{
		{Name: "cluster", ServiceCIDR: "10.96.0.0/16", PodCIDR: "10.244.0.0/16", Nodes: cfg.ClusterWorkers,
			RBACFile: cfg.ClusterRBAC, CRDFiles: cfg.ClusterCRDs, FeatureGates: cfg.ClusterFeatureGates, KillWithParent: cfg.KillWithParent,
			NodeIP: network.HostIP, Metrics: cfg.Metrics},
		{Name: "backend", ServiceCIDR: "10.97.0.0/16", PodCIDR: "10.245.0.0/16", Nodes: cfg.BackendFleet,
			RBACFile: cfg.BackendRBAC, KillWithParent: cfg.KillWithParent, CCI: backendCCI, NodeIP: network.HostIP, Streams: true, Metrics: cfg.Metrics},
	}
	planes := make([]*Plane, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			planes[i], errs[i] = startPlane(ctx, spec, cfg.BinDir, filepath.Join(cfg.StateDir, spec.Name))
		}()
	}
	wg.Wait()
	tb := &Testbed{StateDir: cfg.StateDir, Network: network, Cluster: planes[0], Backend: planes[1], Started: start,
		StartDur: time.Since(start)}
	if err := errors.Join(errs...); err != nil {
		tb.Stop()
		return nil, err
	}
	if err := tb.save(); err != nil {
		tb.Stop()
		return nil, err
	}
	return tb, nil
}

func (tb *Testbed) save() error {
	data, err := json.MarshalIndent(tb, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(tb.StateDir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(tb.StateDir))
}

// Load reads a running test bed's state.
func Load(stateDir string) (*Testbed, error) {
	data, err := os.ReadFile(statePath(stateDir))
	if err != nil {
		return nil, err
	}
	tb := &Testbed{}
	if err := json.Unmarshal(data, tb); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(stateDir), err)
	}
	return tb, nil
}

// Stop stops every process of both planes (clients before etcd) and removes the network.
func (tb *Testbed) Stop() {
	var wg sync.WaitGroup
	for _, p := range []*Plane{tb.Cluster, tb.Backend} {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stopAll(10 * time.Second)
		}()
	}
	wg.Wait()
	teardownNetwork(context.Background(), tb.StateDir, tb.Network)
	_ = os.Remove(statePath(tb.StateDir))
}

// Running lists the recorded processes that are still alive.
func (tb *Testbed) Running() []string {
	var names []string
	for _, p := range []*Plane{tb.Cluster, tb.Backend} {
		if p == nil {
			continue
		}
		for _, proc := range p.Processes {
			if proc.alive() {
				names = append(names, fmt.Sprintf("%s/%s(pid %d)", p.Name, proc.Name, proc.Pid))
			}
		}
	}
	return names
}

// Down stops the test bed recorded in stateDir, if any. With wipe, the state directory's
// contents (data, certificates, logs) are removed too.
func Down(stateDir string, wipe bool) error {
	tb, err := Load(stateDir)
	switch {
	case err == nil:
		tb.Stop()
	case errors.Is(err, os.ErrNotExist):
		// The network's names derive from the state directory: a start that died before
		// writing state.json leaves nothing behind either.
		teardownNetwork(context.Background(), stateDir, nil)
	default:
		return err
	}
	if wipe {
		for _, name := range []string{"cluster", "backend"} {
			if err := os.RemoveAll(filepath.Join(stateDir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}
