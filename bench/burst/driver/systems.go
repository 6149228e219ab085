package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"burstlet/bench/internal/podload"
	"burstlet/bench/internal/proc"
	"burstlet/bench/internal/testbed"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The size every system's node advertises: burstlet's fake provider default.
const (
	nodeCPU    = "2000"
	nodeMemory = "8Ti"
	nodePods   = 10000
)

// system is one way of serving a node: how to get the process that does it, ready for pods.
type system struct {
	name     string
	node     string
	settings string // how it runs, for docs/perf.md
	// start returns the process serving the node once the node is Ready. fresh systems get a
	// new process per run; kwok's is the testbed's and lives across runs.
	start func(ctx context.Context, run string) (*proc.Process, error)
	fresh bool
	// metricsURL, when set, is scraped after each run (burstlet's Prometheus endpoint).
	metricsURL string
	// cleanup removes what the system left in the cluster (its Node).
	cleanup func(ctx context.Context)
}

func deleteNode(ctx context.Context, cs kubernetes.Interface, name string) {
	_ = cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
}

// burstletSystem runs `burstlet run` with its defaults (fake provider, 16 workers, 2 threads)
// and burstlet's own ServiceAccount identity, as an operator would.
func burstletSystem(cs kubernetes.Interface, bin string, tb *testbed.State, logDir string) (*system, error) {
	health, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	s := &system{name: "burstlet", node: "bench-burstlet", fresh: true,
		metricsURL: "http://" + health + "/metrics"}
	kubeletAPI, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--kubeconfig", tb.Cluster.BurstletKubeconfig, "--node-name", s.node,
		"--node-ip", "127.0.0.1", "--health-listen", health, "--kubelet-listen", kubeletAPI}
	s.settings = "`burstlet run --kubeconfig <burstlet.kubeconfig> --node-name " + s.node +
		" --node-ip 127.0.0.1 --health-listen 127.0.0.1:<port>`: defaults otherwise (fake provider, pods " +
		"Running at once, `--workers 16`, `--threads 2`); burstlet's ServiceAccount identity (deploy/rbac)"
	s.start = func(ctx context.Context, run string) (*proc.Process, error) {
		p, err := proc.Start(bin, args, nil, filepath.Join(logDir, run+".log"))
		if err != nil {
			return nil, err
		}
		client := &http.Client{Timeout: 2 * time.Second}
		err = proc.WaitUntil(ctx, p, time.Minute, "burstlet /readyz", func() error {
			resp, err := client.Get("http://" + health + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("readyz: %s", resp.Status)
			}
			return podload.NodeReady(ctx, cs, s.node)
		})
		return p, err
	}
	s.cleanup = func(ctx context.Context) { deleteNode(ctx, cs, s.node) }
	return s, nil
}

// upstreamSystem runs virtual-kubelet v1.14.x with its mock provider. Its defaults stay
// (10 pod sync workers, client-go's default QPS 5 / burst 10, informer resync 1 m); the
// kubelet API port and metrics address are moved to free loopback ports, and it serves the
// testbed's kubelet certificate because it refuses to start without one.
func upstreamSystem(cs kubernetes.Interface, bin, version string, tb *testbed.State, logDir string) (*system, error) {
	s := &system{name: "upstream", node: "bench-upstream", fresh: true}
	// The mock provider reads the node's size from a JSON file keyed by node name.
	cfg := filepath.Join(logDir, "upstream-mock.json")
	mock := map[string]map[string]string{s.node: {"cpu": nodeCPU, "memory": nodeMemory, "pods": fmt.Sprint(nodePods)}}
	data, _ := json.Marshal(mock)
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		return nil, err
	}
	metricsAddr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	kubeletAddr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	kubeletPort := kubeletAddr[strings.LastIndexByte(kubeletAddr, ':')+1:]
	args := []string{"--provider", "mock", "--provider-config", cfg, "--nodename", s.node,
		"--kubeconfig", tb.Cluster.AdminKubeconfig, "--metrics-addr", metricsAddr}
	env := []string{"KUBELET_PORT=" + kubeletPort, "VKUBELET_POD_IP=127.0.0.1",
		"APISERVER_CERT_LOCATION=" + tb.Cluster.KubeletServingCert,
		"APISERVER_KEY_LOCATION=" + tb.Cluster.KubeletServingKey}
	s.settings = "virtual-kubelet " + version + " (github.com/virtual-kubelet/virtual-kubelet/cmd/virtual-kubelet): " +
		"`virtual-kubelet --provider mock --provider-config <{\"" + s.node + "\": {cpu: " + nodeCPU +
		", memory: " + nodeMemory + ", pods: " + fmt.Sprint(nodePods) + "}}> --nodename " + s.node +
		" --kubeconfig <admin.kubeconfig> --metrics-addr 127.0.0.1:<port>` with KUBELET_PORT=<free port>, " +
		"APISERVER_CERT_LOCATION/APISERVER_KEY_LOCATION = the testbed's kubelet serving certificate, " +
		"VKUBELET_POD_IP=127.0.0.1; defaults otherwise (`--pod-sync-workers 10`, `--full-resync-period 1m`, " +
		"client-go's default client rate limit of 5 QPS / burst 10); the testbed's admin kubeconfig (system:masters)"
	s.start = func(ctx context.Context, run string) (*proc.Process, error) {
		p, err := proc.Start(bin, args, env, filepath.Join(logDir, run+".log"))
		if err != nil {
			return nil, err
		}
		// "Ready" is logged once its pod controller has synced its informers.
		err = proc.WaitUntil(ctx, p, time.Minute, "virtual-kubelet ready", func() error {
			data, _ := os.ReadFile(p.Log)
			if !strings.Contains(string(data), "msg=Ready") {
				return fmt.Errorf("not logged Ready yet")
			}
			return podload.NodeReady(ctx, cs, s.node)
		})
		return p, err
	}
	s.cleanup = func(ctx context.Context) { deleteNode(ctx, cs, s.node) }
	return s, nil
}

// kwokSystem is the testbed's own kwok process, given one more node to manage: the floor,
// one status write per pod with no rate limit.
func kwokSystem(cs kubernetes.Interface, tb *testbed.State) *system {
	s := &system{name: "kwok", node: "bench-kwok",
		settings: "the testbed's kwok v0.8.0 (unlimited client rate, stages node-initialize, " +
			"node-heartbeat-with-lease, pod-ready, pod-complete, pod-delete) managing one more Node " +
			"annotated kwok.x-k8s.io/node=fake of " + nodeCPU + " CPU / " + nodeMemory + " / " +
			fmt.Sprint(nodePods) + " pods"}
	pid := tb.Cluster.Pid("kwok")
	s.start = func(ctx context.Context, run string) (*proc.Process, error) {
		if pid == 0 {
			return nil, fmt.Errorf("no kwok process in the testbed's state.json")
		}
		list := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(nodeCPU),
			corev1.ResourceMemory: resource.MustParse(nodeMemory),
			corev1.ResourcePods:   *resource.NewQuantity(nodePods, resource.DecimalSI),
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: s.node,
				Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": s.node},
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"}},
			Status: corev1.NodeStatus{Capacity: list, Allocatable: list},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil &&
			!apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		p := proc.Observe(pid)
		return p, proc.WaitUntil(ctx, p, time.Minute, "kwok node Ready", func() error {
			return podload.NodeReady(ctx, cs, s.node)
		})
	}
	s.cleanup = func(ctx context.Context) { deleteNode(ctx, cs, s.node) }
	return s
}
