package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// spreadDeployment is a Deployment of `replicas` pods spread evenly over the virtual nodes
// `nodes` (required node affinity by host name, a topology spread over host names, the virtual
// nodes' taint tolerated), each pod mounting ConfigMap `cm` and Secret `secret`.
func spreadDeployment(d *daemon, name string, replicas int32, nodes []string, cm, secret string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	spec := cciPodSpec(d)
	spec.NodeSelector = nil
	spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname",
				Operator: corev1.NodeSelectorOpIn, Values: nodes}}}}}}}
	spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1,
		TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}}
	spec.Volumes = []corev1.Volume{
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}},
	}
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"},
		{Name: "creds", MountPath: "/creds", ReadOnly: true}}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}
}

// nodeBackendPods lists the backend pods of virtual node `node` by burstlet's node label: their
// UIDs by source pod UID.
func nodeBackendPods(t *testing.T, bns, node string) map[string]corev1.Pod {
	t.Helper()
	list, err := env.backend.CoreV1().Pods(bns).List(context.Background(),
		metav1.ListOptions{LabelSelector: "burstlet.io/managed-by=burstlet,burstlet.io/node=" + node})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	if list != nil {
		for _, p := range list.Items {
			out[p.Annotations["burstlet.io/source-uid"]] = p
		}
	}
	return out
}

// nodeCopies names node `node`'s backend copies (ConfigMaps and Secrets) by source name.
func nodeCopies(t *testing.T, bns, node string) map[string]string {
	t.Helper()
	ctx := context.Background()
	lo := metav1.ListOptions{LabelSelector: "burstlet.io/managed-by=burstlet,burstlet.io/node=" + node}
	out := map[string]string{}
	cms, err := env.backend.CoreV1().ConfigMaps(bns).List(ctx, lo)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	secrets, err := env.backend.CoreV1().Secrets(bns).List(ctx, lo)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if cms != nil {
		for _, c := range cms.Items {
			out["ConfigMap/"+c.Annotations["burstlet.io/source-name"]] = c.Name
		}
	}
	if secrets != nil {
		for _, s := range secrets.Items {
			out["Secret/"+s.Annotations["burstlet.io/source-name"]] = s.Name
		}
	}
	return out
}

// nodeMarker is the name of node `node`'s marker ConfigMap in the backend namespace, or "".
func nodeMarker(t *testing.T, bns, node string) string {
	t.Helper()
	list, err := env.backend.CoreV1().ConfigMaps(bns).List(context.Background(),
		metav1.ListOptions{LabelSelector: "burstlet.io/managed-by=burstlet,burstlet.io/node-marker=" + node})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if list == nil || len(list.Items) == 0 {
		return ""
	}
	if len(list.Items) > 1 {
		t.Errorf("%d markers of node %s", len(list.Items), node)
	}
	return list.Items[0].Name
}

func uidsOf(pods map[string]corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, string(p.UID))
	}
	sort.Strings(out)
	return out
}

// Two virtual nodes of one cluster (two burstlet processes, the same clusterID, so one backend
// namespace) run one Deployment spread over both, its pods mounting one ConfigMap and one Secret:
// each node's backend pods carry its label, and each node has copies of its own. Node A is
// uninstalled as the chart's pre-delete hook does (its process stopped, then `burstlet cleanup`
// with its config): A's backend pods, copies and marker go; B's backend pods are the same pods,
// still Running, and B's copies, its marker and the namespace stay. B's cleanup, the last node's,
// removes the namespace.
func TestScaleOutUninstallingOneNodeLeavesTheOther(t *testing.T) {
	// Whatever happens, nothing stays on the backend (run last: after both processes stopped, and
	// after the test's temporary files, the config among them, are gone).
	var cfg []byte
	t.Cleanup(func() {
		if cfg == nil {
			return
		}
		dir, err := os.MkdirTemp("", "scaleout")
		if err != nil {
			t.Error(err)
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "burstlet.yaml")
		if err := os.WriteFile(path, cfg, 0o600); err != nil {
			t.Error(err)
			return
		}
		if out, err := cleanup(path, "--all-nodes"); err != nil {
			t.Errorf("burstlet cleanup --all-nodes: %v\n%s", err, out)
		}
	})
	a := startCciDaemon(t, withoutCleanup())
	var err error
	if cfg, err = os.ReadFile(a.config); err != nil {
		t.Fatal(err)
	}
	b := startCciDaemon(t, withClusterID(a.clusterID), withoutCleanup())
	if a.node == b.node {
		t.Fatalf("both daemons serve node %s", a.node)
	}
	bns := a.backendNamespace()
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "spread"}}
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"token": "not-logged"}}
	if _, err := env.cluster.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dep := spreadDeployment(a.daemon, "spread", 6, []string{a.node, b.node}, "settings", "creds")
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Three pods Running on each node, each with one backend pod labelled with its node.
	onNode := map[string][]corev1.Pod{}
	eventually(t, 120*time.Second, "6 pods Running, 3 on each virtual node", func() error {
		onNode = map[string][]corev1.Pod{}
		pods := podsOf(t, ns, "app=spread")
		for _, p := range pods {
			if err := runningOn(&p, p.Spec.NodeName); err != nil {
				return err
			}
			onNode[p.Spec.NodeName] = append(onNode[p.Spec.NodeName], p)
		}
		if len(pods) != 6 || len(onNode[a.node]) != 3 || len(onNode[b.node]) != 3 {
			return fmt.Errorf("%d pods: %d on A, %d on B", len(pods), len(onNode[a.node]), len(onNode[b.node]))
		}
		return nil
	})
	var backendA, backendB map[string]corev1.Pod
	eventually(t, 30*time.Second, "each node's backend pods Running under its label", func() error {
		backendA, backendB = nodeBackendPods(t, bns, a.node), nodeBackendPods(t, bns, b.node)
		for _, on := range []struct {
			node    string
			backend map[string]corev1.Pod
		}{{a.node, backendA}, {b.node, backendB}} {
			if len(on.backend) != 3 {
				return fmt.Errorf("%d backend pods labelled with node %s", len(on.backend), on.node)
			}
			for _, p := range onNode[on.node] {
				bp, ok := on.backend[string(p.UID)]
				if !ok {
					return fmt.Errorf("no backend pod of node %s for %s", on.node, p.Name)
				}
				if bp.Status.Phase != corev1.PodRunning {
					return fmt.Errorf("backend pod %s is %s", bp.Name, bp.Status.Phase)
				}
			}
		}
		return nil
	})
	copiesA, copiesB := nodeCopies(t, bns, a.node), nodeCopies(t, bns, b.node)
	for _, c := range []struct {
		node   string
		copies map[string]string
	}{{a.node, copiesA}, {b.node, copiesB}} {
		if c.copies["ConfigMap/settings"] == "" || c.copies["Secret/creds"] == "" {
			t.Fatalf("node %s's copies: %v", c.node, c.copies)
		}
	}
	if copiesA["ConfigMap/settings"] == copiesB["ConfigMap/settings"] || copiesA["Secret/creds"] == copiesB["Secret/creds"] {
		t.Errorf("the nodes share copies: A %v, B %v", copiesA, copiesB)
	}
	markerA, markerB := nodeMarker(t, bns, a.node), nodeMarker(t, bns, b.node)
	if markerA == "" || markerB == "" || markerA == markerB {
		t.Fatalf("node markers: A %q, B %q", markerA, markerB)
	}
	t.Logf("node A %s: copies %v, marker %s; node B %s: copies %v, marker %s", a.node, copiesA, markerA,
		b.node, copiesB, markerB)

	// Uninstall node A: its process stops, then its cleanup runs.
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop node A: %v", err)
	}
	out, err := a.uninstall()
	if err != nil {
		t.Fatalf("burstlet cleanup of node A: %v\n%s", err, out)
	}
	t.Logf("cleanup of node A:\n%s", out)
	for _, says := range []string{"removed for virtual node " + a.node, "3 pods, 1 ConfigMap copy, 1 Secret copy",
		"1 node marker", "stays: virtual nodes " + b.node + " still use it"} {
		if !strings.Contains(out, says) {
			t.Errorf("cleanup's output does not say %q", says)
		}
	}
	// Cleanup waited until A's backend pods were gone.
	if left := nodeBackendPods(t, bns, a.node); len(left) > 0 {
		t.Errorf("%d backend pods of node A after its cleanup", len(left))
	}
	if left := nodeCopies(t, bns, a.node); len(left) > 0 {
		t.Errorf("node A's copies after its cleanup: %v", left)
	}
	if m := nodeMarker(t, bns, a.node); m != "" {
		t.Errorf("node A's marker %s after its cleanup", m)
	}
	got, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp != nil {
		t.Fatalf("backend namespace after node A's cleanup: %v (deleting: %v)", err, got != nil && got.DeletionTimestamp != nil)
	}
	// Node B is untouched, also after a few more of its sweeps (sweepInterval 1s).
	time.Sleep(3 * time.Second)
	nowB := nodeBackendPods(t, bns, b.node)
	if got, want := uidsOf(nowB), uidsOf(backendB); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("node B's backend pods changed: %v, were %v", got, want)
	}
	for _, p := range nowB {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			t.Errorf("node B's backend pod %s: %s (deleting: %v)", p.Name, p.Status.Phase, p.DeletionTimestamp != nil)
		}
	}
	if now := nodeCopies(t, bns, b.node); fmt.Sprint(now) != fmt.Sprint(copiesB) {
		t.Errorf("node B's copies changed: %v, were %v", now, copiesB)
	}
	if m := nodeMarker(t, bns, b.node); m != markerB {
		t.Errorf("node B's marker %q, was %q", m, markerB)
	}
	for _, p := range podsOf(t, ns, "app=spread") {
		if p.Spec.NodeName == b.node {
			if err := runningOn(&p, b.node); err != nil {
				t.Errorf("node B's pod: %v", err)
			}
		}
	}

	// Uninstall node B, the last one: the namespace goes.
	if err := b.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop node B: %v", err)
	}
	out, err = b.uninstall()
	if err != nil {
		t.Fatalf("burstlet cleanup of node B: %v\n%s", err, out)
	}
	t.Logf("cleanup of node B:\n%s", out)
	if !strings.Contains(out, "backend namespace "+bns+" is gone, with everything in it: no other virtual node used it") {
		t.Errorf("cleanup of the last node does not say the namespace is gone:\n%s", out)
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("backend namespace after the last node's cleanup: %v", err)
	}
}
