package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mountedConfigMap is the name of the ConfigMap (the backend copy) that the backend pod made for
// cluster pod ns/name mounts, once that pod exists.
func mountedConfigMap(t *testing.T, bns, ns, name string) (string, error) {
	t.Helper()
	p, err := env.cluster.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	b := backendPodFor(t, bns, p)
	if b == nil {
		return "", fmt.Errorf("no backend pod for %s", name)
	}
	for _, v := range b.Spec.Volumes {
		if v.ConfigMap != nil {
			return v.ConfigMap.Name, nil
		}
	}
	return "", fmt.Errorf("backend pod %s mounts no ConfigMap", b.Name)
}

// Two virtual nodes of one cluster (two burstlet processes, same clusterID, so one backend
// namespace) run pods mounting the same ConfigMap. Node A's pod goes and A's sweeps remove A's
// copy; node B's pod keeps its copy, and an edit of the ConfigMap reaches it.
func TestCciNodesSharingABackendNamespaceKeepTheirCopies(t *testing.T) {
	a := startCciDaemon(t)
	b := startCciDaemon(t, withClusterID(a.clusterID))
	if a.node == b.node {
		t.Fatalf("both daemons serve node %s", a.node)
	}
	bns := a.backendNamespace()
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"k": "v1"}}
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, on := range []struct {
		name string
		d    *cciDaemon
	}{{"on-a", a}, {"on-b", b}} {
		spec := cciPodSpec(on.d.daemon)
		spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}}}}}
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: on.name}, Spec: spec}
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var copyA, copyB string
	eventually(t, 90*time.Second, "both pods Running with their copies", func() error {
		for _, on := range []struct {
			name string
			d    *cciDaemon
			copy *string
		}{{"on-a", a, &copyA}, {"on-b", b, &copyB}} {
			p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, on.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if err := runningOn(p, on.d.node); err != nil {
				return err
			}
			if *on.copy, err = mountedConfigMap(t, bns, ns, on.name); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("node A's copy %s, node B's copy %s", copyA, copyB)

	if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, "on-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// sweepInterval is 1s and a copy goes on the second sweep that finds it unused.
	eventually(t, 60*time.Second, "node A's copy swept", func() error {
		if _, err := env.backend.CoreV1().ConfigMaps(bns).Get(ctx, copyA, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("copy %s: %v", copyA, err)
		}
		return nil
	})
	time.Sleep(4 * time.Second) // several more sweeps of both nodes
	if _, err := env.backend.CoreV1().ConfigMaps(bns).Get(ctx, copyB, metav1.GetOptions{}); err != nil {
		t.Fatalf("node B's copy %s after node A's sweeps: %v", copyB, err)
	}

	cm.Data["k"] = "v2"
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the edit on node B's copy", func() error {
		c, err := env.backend.CoreV1().ConfigMaps(bns).Get(ctx, copyB, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Data["k"] != "v2" {
			return fmt.Errorf("copy %s has %q", copyB, c.Data["k"])
		}
		return nil
	})
	p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "on-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := runningOn(p, b.node); err != nil {
		t.Error(err)
	}
}
