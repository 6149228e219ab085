package tests

import (
	"context"
	"fmt"
	"slices"
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
	// The kubelet's conditions in its order, with its reasons, then burstlet's own; no
	// NetworkUnavailable, which a kubelet never sets.
	var types []string
	for _, c := range node.Status.Conditions {
		types = append(types, string(c.Type))
	}
	if want := []string{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready", "ProviderUnavailable"}; !slices.Equal(types, want) {
		t.Errorf("conditions %v, want %v", types, want)
	}
	for ct, reason := range map[corev1.NodeConditionType]string{
		corev1.NodeMemoryPressure: "KubeletHasSufficientMemory",
		corev1.NodeDiskPressure:   "KubeletHasNoDiskPressure",
		corev1.NodePIDPressure:    "KubeletHasSufficientPID",
		corev1.NodeReady:          "KubeletReady"} {
		c := nodeCondition(node, ct)
		want := corev1.ConditionFalse
		if ct == corev1.NodeReady {
			want = corev1.ConditionTrue
		}
		if c == nil || c.Status != want || c.Reason != reason {
			t.Errorf("condition %s = %+v, want %s with reason %s", ct, c, want, reason)
		}
	}
	addr := map[corev1.NodeAddressType]string{}
	for _, a := range node.Status.Addresses {
		addr[a.Type] = a.Address
	}
	if addr[corev1.NodeInternalIP] != d.nodeIP || addr[corev1.NodeHostName] != d.node {
		t.Errorf("addresses %+v, want InternalIP %s and Hostname %s", node.Status.Addresses, d.nodeIP, d.node)
	}
	if node.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(d.kubeletPort) {
		t.Errorf("kubelet port %d", node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	}
	// The cluster's version, marked as burstlet's: v1.36.3-burstlet.<burstlet version>.
	server, err := env.cluster.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v := node.Status.NodeInfo.KubeletVersion; server.GitVersion != "v1.36.3" ||
		!strings.HasPrefix(v, server.GitVersion+"-burstlet.") || len(v) == len(server.GitVersion+"-burstlet.") {
		t.Errorf("kubeletVersion %q, cluster %q", v, server.GitVersion)
	}
	if k := node.Status.NodeInfo.KernelVersion; k != "" {
		t.Errorf("kernelVersion %q: a virtual node has no kernel", k)
	}
	// burstlet declares only what its kubelet API does (README: "The virtual node's status").
	if f := node.Status.DeclaredFeatures; len(f) != 1 || f[0] != "ExtendWebSocketsToKubelet" {
		t.Errorf("declaredFeatures %v, want [ExtendWebSocketsToKubelet]", f)
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

// A node an older burstlet wrote (conditions in its order, its NetworkUnavailable) gets the
// kubelet's order and loses that condition when burstlet starts again; a condition someone
// else wrote stays, and conditions whose status did not change keep their lastTransitionTime.
func TestRestartKeepsTransitionTimesAndDropsStaleConditions(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	nodes := env.cluster.CoreV1().Nodes()
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	node, err := nodes.Get(ctx, d.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// As burstlet 0.1 left it: Ready first, the pressure conditions later, NetworkUnavailable;
	// the transition times an hour ago.
	past := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	byType := map[corev1.NodeConditionType]corev1.NodeCondition{}
	for _, c := range node.Status.Conditions {
		c.LastTransitionTime = past
		byType[c.Type] = c
	}
	node.Status.Conditions = nil
	for _, ct := range []corev1.NodeConditionType{corev1.NodeReady, providerUnavailable,
		corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		node.Status.Conditions = append(node.Status.Conditions, byType[ct])
	}
	node.Status.Conditions = append(node.Status.Conditions,
		corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse,
			Reason: "ProviderNetworkReady", Message: "pods get their network from the provider",
			LastHeartbeatTime: past, LastTransitionTime: past},
		corev1.NodeCondition{Type: "example.com/Checked", Status: corev1.ConditionTrue,
			Reason: "Checked", LastHeartbeatTime: past, LastTransitionTime: past})
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	d.start()
	d.waitReady(60 * time.Second)
	var got *corev1.Node
	eventually(t, 30*time.Second, "NetworkUnavailable removed", func() error {
		n, err := nodes.Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := nodeCondition(n, corev1.NodeNetworkUnavailable); c != nil {
			return fmt.Errorf("still %+v", c)
		}
		got = n
		return nil
	})
	var types []string
	for _, c := range got.Status.Conditions {
		types = append(types, string(c.Type))
	}
	if want := []string{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready", "ProviderUnavailable",
		"example.com/Checked"}; !slices.Equal(types, want) {
		t.Errorf("conditions %v, want %v", types, want)
	}
	for _, ct := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure,
		corev1.NodePIDPressure, corev1.NodeReady, providerUnavailable, "example.com/Checked"} {
		c := nodeCondition(got, ct)
		if c == nil || !c.LastTransitionTime.Equal(&past) {
			t.Errorf("condition %s = %+v, want lastTransitionTime %v kept", ct, c, past)
		}
		if ct != "example.com/Checked" && (c == nil || !c.LastHeartbeatTime.After(past.Time)) {
			t.Errorf("condition %s = %+v, want a fresh lastHeartbeatTime", ct, c)
		}
	}
}
