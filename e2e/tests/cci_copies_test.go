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

// An SFS claim's backend copy deleted (as the sweep does once no pod uses it) while its Retain
// volume stays, Released and still naming the old claim copy: a new pod for the same claim makes
// the claim copy again, the volume is handed to it, and the pod runs with the claim Bound.
func TestCciClaimCopyMadeAgainBindsItsReleasedVolume(t *testing.T) {
	// The pair of volume and claim copy is a Kubernetes backend's (CCI imports instead).
	d := startCciDaemon(t, withSweepInterval("1h"), withKubernetesAPI()) // the test plays the sweep's part
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()
	staticClaim(t, ns, "sfs", "nas.csi.everest.io", "csi-nas")
	podWithClaim := func(name string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cciPodSpec(d.daemon)}
		p.Spec.Volumes = []corev1.Volume{claimVolume("sfs")}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		return p
	}
	// runsWithBoundClaim waits until pod `name` runs and its backend claim is Bound; it returns
	// the backend claim and volume names.
	runsWithBoundClaim := func(name string) (string, string) {
		var claim, volume string
		eventually(t, 90*time.Second, name+" Running with its claim Bound on the backend", func() error {
			p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			b := backendPodFor(t, bns, p)
			if b == nil || len(b.Spec.Volumes) == 0 || b.Spec.Volumes[0].PersistentVolumeClaim == nil {
				return fmt.Errorf("backend pod %+v", b)
			}
			claim = b.Spec.Volumes[0].PersistentVolumeClaim.ClaimName
			pvc, err := env.backend.CoreV1().PersistentVolumeClaims(bns).Get(ctx, claim, metav1.GetOptions{})
			if err != nil {
				return err
			}
			volume = pvc.Spec.VolumeName
			if pvc.Status.Phase != corev1.ClaimBound {
				if pv, err := env.backend.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{}); err == nil {
					return fmt.Errorf("backend claim %s is %s; volume %s is %s, bound to %+v", claim,
						pvc.Status.Phase, volume, pv.Status.Phase, pv.Spec.ClaimRef)
				}
				return fmt.Errorf("backend claim %s is %s", claim, pvc.Status.Phase)
			}
			return runningOn(p, d.node)
		})
		return claim, volume
	}

	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, podWithClaim("first"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	claim, volume := runsWithBoundClaim("first")
	if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "first pod gone from the backend", func() error {
		if n := len(backendPods(t, bns)); n > 0 {
			return fmt.Errorf("%d backend pods", n)
		}
		return nil
	})
	if err := env.backend.CoreV1().PersistentVolumeClaims(bns).Delete(ctx, claim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "backend volume Released", func() error {
		pv, err := env.backend.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pv.Status.Phase != corev1.VolumeReleased {
			return fmt.Errorf("volume %s is %s", volume, pv.Status.Phase)
		}
		return nil
	})

	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, podWithClaim("second"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	again, sameVolume := runsWithBoundClaim("second")
	if again != claim || sameVolume != volume {
		t.Errorf("second pod's claim %s on %s, want %s on %s", again, sameVolume, claim, volume)
	}
}
