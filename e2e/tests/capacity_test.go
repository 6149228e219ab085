package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeResources is what a virtual node advertises, as quantities (cpu, memory, pods,
// ephemeral-storage).
type nodeResources [4]string

var nodeResourceNames = [4]corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory,
	corev1.ResourcePods, corev1.ResourceEphemeralStorage}

// configuredResources are provider.cci's defaults (cpu, memory, pods, ephemeralStorage).
var configuredResources = nodeResources{"2000", "8Ti", "10000", "20Ti"}

// differs says how `list` differs from `want`, compared as quantities ("2000" is "2k").
func differs(what string, list corev1.ResourceList, want nodeResources) error {
	for i, name := range nodeResourceNames {
		got, ok := list[name]
		if !ok {
			return fmt.Errorf("%s has no %s", what, name)
		}
		if got.Cmp(resource.MustParse(want[i])) != 0 {
			return fmt.Errorf("%s %s is %s, want %s", what, name, got.String(), want[i])
		}
	}
	return nil
}

// nodeAdvertises waits (a minute at most) until the node's capacity and allocatable are these.
func nodeAdvertises(t *testing.T, node string, capacity, allocatable nodeResources) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("node capacity %v, allocatable %v", capacity, allocatable), func() error {
		n, err := env.cluster.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := differs("capacity", n.Status.Capacity, capacity); err != nil {
			return err
		}
		return differs("allocatable", n.Status.Allocatable, allocatable)
	})
}

// quotaUsedPods waits until the quota controller counts `pods` pods in the quota.
func quotaUsedPods(t *testing.T, ns, name string, pods int64) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("quota %s counting %d pods", name, pods), func() error {
		q, err := env.backend.CoreV1().ResourceQuotas(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		used, ok := q.Status.Used[corev1.ResourcePods]
		if !ok || used.Value() != pods {
			return fmt.Errorf("used %v", q.Status.Used)
		}
		return nil
	})
}

// The virtual node's capacity follows the backend namespace's ResourceQuota (issue 15,
// "Operations"): the quota's hard limits lower the configured numbers, other pods in the
// namespace lower allocatable while the node's own pods do not, a change shows within a minute,
// and without the quota the configured numbers come back.
func TestCciCapacityFollowsBackendQuota(t *testing.T) {
	d := startCciDaemon(t)
	ns := d.backendNamespace()
	ctx := context.Background()
	nodeAdvertises(t, d.node, configuredResources, configuredResources)

	quotas := env.backend.CoreV1().ResourceQuotas(ns)
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "burst-quota"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourceRequestsCPU:    resource.MustParse("8"),
			corev1.ResourceRequestsMemory: resource.MustParse("16Gi"),
			corev1.ResourcePods:           resource.MustParse("20"),
		}}}
	start := time.Now()
	if _, err := quotas.Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	limited := nodeResources{"8", "16Gi", "20", "20Ti"}
	nodeAdvertises(t, d.node, limited, limited)
	t.Logf("quota on the node after %v", time.Since(start).Round(time.Millisecond))

	// A pod of the node's own: allocatable stays (what it takes is the node's to give).
	cns := namespace(t, env.cluster)
	own := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "own"}, Spec: cciPodSpec(d.daemon)}
	if _, err := env.cluster.CoreV1().Pods(cns).Create(ctx, own, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "own pod Running", func() error {
		p, err := env.cluster.CoreV1().Pods(cns).Get(ctx, "own", metav1.GetOptions{})
		if err != nil {
			return err
		}
		return runningOn(p, d.node)
	})
	quotaUsedPods(t, ns, "burst-quota", 1)
	consistently(t, 3*time.Second, "allocatable unchanged by the node's own pod", func() error {
		n, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return differs("allocatable", n.Status.Allocatable, limited)
	})

	// Someone else's pod in the namespace (another virtual node's, say): out of this node's reach.
	size := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"),
		corev1.ResourceMemory: resource.MustParse("2Gi")}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "someone-else"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27",
			Resources: corev1.ResourceRequirements{Requests: size, Limits: size}}}}}
	if _, err := env.backend.CoreV1().Pods(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	quotaUsedPods(t, ns, "burst-quota", 2)
	nodeAdvertises(t, d.node, limited, nodeResources{"7", "14Gi", "19", "20Ti"})

	// The operator lowers the quota.
	start = time.Now()
	current, err := quotas.Get(ctx, "burst-quota", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	current.Spec.Hard = corev1.ResourceList{
		corev1.ResourceRequestsCPU:    resource.MustParse("4"),
		corev1.ResourceRequestsMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:           resource.MustParse("10"),
	}
	if _, err := quotas.Update(ctx, current, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeAdvertises(t, d.node, nodeResources{"4", "8Gi", "10", "20Ti"}, nodeResources{"3", "6Gi", "9", "20Ti"})
	t.Logf("quota change on the node after %v", time.Since(start).Round(time.Millisecond))

	// And removes it: the configured numbers again.
	if err := env.backend.CoreV1().Pods(ns).Delete(ctx, "someone-else", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := quotas.Delete(ctx, "burst-quota", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	nodeAdvertises(t, d.node, configuredResources, configuredResources)
}
