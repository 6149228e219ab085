package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The OCI image is self-contained: its root filesystem, unpacked, runs burstlet in a chroot as
// the image's non-root user, with nothing of this machine's but the kernel. That burstlet joins
// the test bed (TLS to the API server with the image's libraries), runs a pod, and serves its
// logs through the API server (its kubelet API's TLS).
func TestImageRunsBurstletInAChroot(t *testing.T) {
	layout := os.Getenv("BURSTLET_IMAGE")
	if layout == "" {
		t.Fatal("BURSTLET_IMAGE is not set (make e2e builds the image and sets it to its OCI layout)")
	}
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	mkimage := filepath.Join(os.Getenv("BURSTLET_BIN_DIR"), "mkimage")
	if out, err := exec.Command(mkimage, "extract", "--layout", layout, "--to", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("mkimage extract: %v\n%s", err, out)
	}
	// Nothing but the image: no shell, no libraries beyond what burstlet loads.
	for _, absent := range []string{"bin/sh", "usr/bin/env", "usr/lib/x86_64-linux-gnu/libcurl.so.4"} {
		if _, err := os.Stat(filepath.Join(rootfs, absent)); err == nil {
			t.Errorf("the image holds /%s", absent)
		}
	}
	// The cluster connection, where the chrooted process sees it.
	for from, to := range map[string]string{env.tb.Cluster.BurstletKubeconfig: "etc/burstlet/kubeconfig",
		env.tb.Cluster.CAFile: "etc/burstlet/ca.crt"} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, to), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version, err := exec.Command("chroot", "--userspec=65532:65532", rootfs, "/usr/bin/burstlet", "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(version), "burstlet ") {
		t.Fatalf("burstlet --version in the image: %v: %s", err, version)
	}

	d := newDaemonRunning(t, []string{"chroot", "--userspec=65532:65532", rootfs, "/usr/bin/burstlet"},
		"/etc/burstlet/kubeconfig", "/etc/burstlet/ca.crt")
	d.waitReady(60 * time.Second)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "from-image",
		Annotations: map[string]string{"fake.burstlet.io/logs": "served by the image\n"}}, Spec: podSpecFor(d)}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the pod Running on the image's node", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return runningOn(p, d.node)
	})
	eventually(t, 30*time.Second, "the pod's logs through the API server", func() error {
		data, err := env.cluster.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return err
		}
		if string(data) != "served by the image\n" {
			return fmt.Errorf("logs %q", data)
		}
		return nil
	})
}
