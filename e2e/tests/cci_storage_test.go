package tests

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"burstlet/e2e/testbed"
)

// needsGateway skips a test that speaks CCI's own API when the backend plane is a plain one.
func needsGateway(t *testing.T) *testbed.CCIGateway {
	t.Helper()
	gw := env.tb.Backend.CCIGateway
	if gw == nil {
		t.Skip("the backend plane is not in CCI mode: no CCI gateway")
	}
	return gw
}

// gatewayLines are the lines of the CCI gateway's log that contain every one of parts.
func gatewayLines(t *testing.T, parts ...string) []string {
	t.Helper()
	data, err := os.ReadFile(needsGateway(t).Log)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// fileSystemBound waits until the file system is bound to a claim in backend namespace bns (want
// true) or to none (want false).
func fileSystemBound(t *testing.T, id, bns string, want bool) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("file system %s bound=%v", id, want), func() error {
		fs, err := testbed.GetFileSystem(context.Background(), env.backend, id)
		if err != nil {
			return err
		}
		if got := strings.HasPrefix(fs.BoundTo, bns+"/"); got != want {
			return fmt.Errorf("bound to %q", fs.BoundTo)
		}
		return nil
	})
}

// SFS and SFS Turbo claims reach CCI by import and leave by CCI's unbind: a Deployment mounting
// both runs; scaled to 0 (its burst pods deleted, the sweep run), scaled up again, burstlet
// restarted, the Deployment deleted and `burstlet cleanup` run, every file system still exists,
// and no claim was ever deleted any other way than by unbinding.
func TestCciFileSystemsOutliveEverythingBurstletDoes(t *testing.T) {
	needsGateway(t)
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()
	sfs := staticClaim(t, ns, "shared", "nas.csi.everest.io", "csi-nas")
	turbo := staticClaim(t, ns, "fast", "sfsturbo.csi.everest.io", "csi-sfsturbo",
		"everest.io/share-volume-type", "PERFORMANCE")

	spec := cciPodSpec(d.daemon)
	spec.Volumes = []corev1.Volume{claimVolume("shared"), claimVolume("fast")}
	spec.Volumes[1].Name = "fast"
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"},
		{Name: "fast", MountPath: "/fast"}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "files"},
		Spec: appsv1.DeploymentSpec{Replicas: int32p(2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "files"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "files"}},
				Spec: spec}}}
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func(n int) {
		t.Helper()
		eventually(t, 90*time.Second, fmt.Sprintf("%d pods Running on the backend with both imports", n), func() error {
			pods := podsOf(t, ns, "app=files")
			if len(pods) != n {
				return fmt.Errorf("%d pods", len(pods))
			}
			for i := range pods {
				if err := runningOn(&pods[i], d.node); err != nil {
					return err
				}
			}
			claims, err := env.backend.CoreV1().PersistentVolumeClaims(bns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			classes := map[string]string{}
			for _, c := range claims.Items {
				if c.Spec.StorageClassName != nil {
					classes[c.Annotations["volumeID"]] = *c.Spec.StorageClassName
				}
			}
			if classes[sfs] != "nfs-rw" || classes[turbo] != "efs-performance" || len(classes) != 2 {
				return fmt.Errorf("backend claims by volume: %v", classes)
			}
			return nil
		})
	}
	running(2)
	fileSystemBound(t, sfs, bns, true)
	fileSystemBound(t, turbo, bns, true)

	scale := func(n int32) {
		t.Helper()
		patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
		if _, err := env.cluster.AppsV1().Deployments(ns).Patch(ctx, "files", types.MergePatchType, []byte(patch),
			metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Scaled to 0: the pods go, the sweep unbinds both imports; the file systems stay, free.
	scale(0)
	eventually(t, 60*time.Second, "backend pods and claims gone", func() error {
		if n := len(backendPods(t, bns)); n > 0 {
			return fmt.Errorf("%d backend pods", n)
		}
		claims, err := env.backend.CoreV1().PersistentVolumeClaims(bns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(claims.Items) > 0 {
			return fmt.Errorf("%d backend claims", len(claims.Items))
		}
		return nil
	})
	fileSystemBound(t, sfs, bns, false)
	fileSystemBound(t, turbo, bns, false)

	// Up again, then a restart: the pods run on, imported again once.
	scale(2)
	running(2)
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	d.start()
	d.waitReady(60 * time.Second)
	running(2)
	fileSystemBound(t, sfs, bns, true)

	// Deleted and cleaned up: the namespace goes, the file systems stay.
	if err := env.cluster.AppsV1().Deployments(ns).Delete(ctx, "files", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out, err := d.uninstall(); err != nil {
		t.Fatalf("burstlet cleanup: %v\n%s", err, out)
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("backend namespace after cleanup: %v", err)
	}
	for _, id := range []string{sfs, turbo} {
		fs, err := testbed.GetFileSystem(ctx, env.backend, id)
		if err != nil {
			t.Errorf("file system %s after cleanup: %v", id, err)
			continue
		}
		if fs.BoundTo != "" {
			t.Errorf("file system %s still bound to %s", id, fs.BoundTo)
		}
	}
	// Every claim burstlet deleted, it unbound.
	for _, line := range gatewayLines(t, "method=DELETE", "/namespaces/"+bns+"/persistentvolumeclaims/") {
		if !strings.Contains(line, "deleteVolume=false") {
			t.Errorf("a claim deleted without unbinding: %s", line)
		}
	}
	if len(gatewayLines(t, "method=DELETE", "/namespaces/"+bns+"/persistentvolumeclaims/", "deleteVolume=false")) == 0 {
		t.Error("no unbind in the gateway's log")
	}
	if lines := gatewayLines(t, "file system", "deleted with its claim", bns); len(lines) > 0 {
		t.Errorf("file systems destroyed: %v", lines)
	}
}

// A pod CCI refuses fails once, with CCI's reason in its status and one Warning event, and is not
// sent again: here a claim whose file system CCI does not have (another region).
func TestCciRefusalFailsThePodOnce(t *testing.T) {
	needsGateway(t)
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	handle := staticClaim(t, ns, "elsewhere", "nas.csi.everest.io", "csi-nas")
	if err := testbed.DeleteFileSystem(ctx, env.backend, handle); err != nil {
		t.Fatal(err)
	}
	spec := cciPodSpec(d.daemon)
	spec.Volumes = []corev1.Volume{claimVolume("elsewhere")}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "mounts-elsewhere"},
		Spec: spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	refusedByBurstlet(t, d, ns, "mounts-elsewhere", "VolumeNotFound", "storage volume is not found", handle)
	// Not retried: one import asked, one event.
	consistently(t, 5*time.Second, "the import is not asked again", func() error {
		if n := len(gatewayLines(t, "method=POST", "/namespaces/"+d.backendNamespace()+"/extended-persistentvolumeclaims")); n != 1 {
			return fmt.Errorf("%d imports asked", n)
		}
		return nil
	})
	n := 0
	for _, e := range eventsFor(t, ns, "mounts-elsewhere") {
		if e.Type == corev1.EventTypeWarning && e.Reason == "VolumeNotFound" {
			n += int(e.Count)
		}
	}
	if n != 1 {
		t.Errorf("%d VolumeNotFound events, want 1", n)
	}
}

// An account whose namespace quota is used up: burstlet stops at start with one line that says
// so, having made nothing.
func TestCciNamespaceQuotaStopsStartup(t *testing.T) {
	needsGateway(t)
	d := startCciDaemon(t, withAccount("full"), withoutWaiting())
	if err := d.waitExit(60 * time.Second); err == nil {
		t.Fatalf("burstlet exited 0 without a backend namespace:\n%s", d.output())
	}
	var lines []string
	for _, l := range strings.Split(d.output(), "\n") {
		if strings.Contains(l, "NamespaceQuotaExceeded") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "used namespaces exceeds quota") {
		t.Errorf("want one line with NamespaceQuotaExceeded and CCI's message, got %q:\n%s", lines, d.output())
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(context.Background(), d.backendNamespace(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("backend namespace: %v", err)
	}
}

// CCI's namespace names are unique across accounts: a name another account holds (this one may
// not even read it) stops burstlet with a line naming the clusterID to change.
func TestCciNamespaceNameHeldByAnotherAccount(t *testing.T) {
	needsGateway(t)
	id := fmt.Sprintf("e2e%d", time.Now().UnixNano()%10000000)
	ctx := context.Background()
	theirs := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cce-burst-" + id,
		Annotations: map[string]string{testbed.CCIAccountAnnotation: "another-tenant",
			testbed.CCIFlavorAnnotation: testbed.CCIFlavorGeneral}}}
	if _, err := env.backend.CoreV1().Namespaces().Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.backend.CoreV1().Namespaces().Delete(context.Background(), theirs.Name, metav1.DeleteOptions{})
	})
	d := startCciDaemon(t, withClusterID(id), withoutWaiting(), withToken(), withoutCleanup())
	if err := d.waitExit(60 * time.Second); err == nil {
		t.Fatalf("burstlet exited 0 on another account's namespace:\n%s", d.output())
	}
	out := d.output()
	if !strings.Contains(out, "NamespaceNameTaken") || !strings.Contains(out, "provider.cci.clusterID") {
		t.Errorf("output does not say the name is taken:\n%s", out)
	}
	// `burstlet cleanup` cannot read it either, and leaves it alone.
	if out, err := cleanup(d.config); err == nil {
		t.Errorf("burstlet cleanup succeeded on another account's namespace:\n%s", out)
	}
	got, err := env.backend.CoreV1().Namespaces().Get(ctx, theirs.Name, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp != nil || got.Labels["burstlet.io/managed-by"] != "" {
		t.Errorf("the other account's namespace was touched: %v %+v", err, got)
	}
}
