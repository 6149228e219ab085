package tests

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func nodeReady(n *corev1.Node) error {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status != corev1.ConditionTrue {
				return fmt.Errorf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
			}
			return nil
		}
	}
	return fmt.Errorf("no Ready condition")
}

// The virtual node registers with what a scheduler and an operator expect, and its Lease is
// renewed.
func TestVirtualNodeRegistersAndRenewsLease(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	node, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nodeReady(node); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"type": "virtual-kubelet", "kubernetes.io/role": "agent",
		"kubernetes.io/os": "linux", "kubernetes.io/hostname": d.node} {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	if node.Labels["node.kubernetes.io/instance-type"] == "" {
		t.Error("no instance-type label")
	}
	// The node lifecycle controller may add its own taints (not-ready, briefly): look for ours.
	ours := 0
	for _, taint := range node.Spec.Taints {
		if taint.Key == "virtual-kubelet.io/provider" {
			ours++
			if taint.Value != "fake" || taint.Effect != corev1.TaintEffectNoSchedule {
				t.Errorf("taint %+v", taint)
			}
		}
	}
	if ours != 1 {
		t.Errorf("taints = %+v, want one virtual-kubelet.io/provider", node.Spec.Taints)
	}
	if got := node.Status.Capacity.Pods().Value(); got != 10000 {
		t.Errorf("pod capacity %d", got)
	}
	if got := node.Status.Allocatable.Cpu().Value(); got != 2000 {
		t.Errorf("allocatable cpu %d", got)
	}
	types := map[corev1.NodeConditionType]corev1.ConditionStatus{}
	for _, c := range node.Status.Conditions {
		types[c.Type] = c.Status
	}
	for _, ct := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure,
		corev1.NodePIDPressure, corev1.NodeNetworkUnavailable} {
		if types[ct] != corev1.ConditionFalse {
			t.Errorf("condition %s = %q, want False", ct, types[ct])
		}
	}
	addr := map[corev1.NodeAddressType]string{}
	for _, a := range node.Status.Addresses {
		addr[a.Type] = a.Address
	}
	if addr[corev1.NodeInternalIP] != "127.0.0.1" || addr[corev1.NodeHostName] == "" {
		t.Errorf("addresses %+v", node.Status.Addresses)
	}
	if node.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("kubelet port %d", node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	}
	if v := node.Status.NodeInfo.KubeletVersion; !strings.HasPrefix(v, "v") || !strings.HasSuffix(v, "-burstlet") {
		t.Errorf("kubeletVersion %q", v)
	}

	lease, err := env.cluster.CoordinationV1().Leases("kube-node-lease").Get(ctx, d.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != d.node ||
		lease.Spec.LeaseDurationSeconds == nil || *lease.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("lease spec %+v", lease.Spec)
	}
	if len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != node.UID {
		t.Errorf("lease owner %+v, node uid %s", lease.OwnerReferences, node.UID)
	}
	first := lease.Spec.RenewTime.Time
	eventually(t, 20*time.Second, "lease renewal", func() error {
		l, err := env.cluster.CoordinationV1().Leases("kube-node-lease").Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !l.Spec.RenewTime.Time.After(first) {
			return fmt.Errorf("renewTime still %v", l.Spec.RenewTime)
		}
		return nil
	})
}

// A Node deleted by hand is registered again, with a lease owned by the new Node.
func TestVirtualNodeComesBackAfterDeletion(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	old, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.CoreV1().Nodes().Delete(ctx, d.node, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "node registered again", func() error {
		n, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.UID == old.UID {
			return fmt.Errorf("still the old node")
		}
		return nodeReady(n)
	})
	eventually(t, 30*time.Second, "lease owned by the new node", func() error {
		n, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		l, err := env.cluster.CoordinationV1().Leases("kube-node-lease").Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != n.UID {
			return fmt.Errorf("lease owner %+v, node %s", l.OwnerReferences, n.UID)
		}
		return nil
	})
}

// SIGTERM: burstlet exits cleanly and releases its lease.
func TestGracefulShutdownReleasesLease(t *testing.T) {
	d := startDaemon(t)
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	l, err := env.cluster.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), d.node,
		metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
		t.Errorf("lease still held by %q", *l.Spec.HolderIdentity)
	}
}
