package tests

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func burstletBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BURSTLET")
	if bin == "" {
		t.Fatal("BURSTLET is not set (make e2e sets it to the release build of burstlet)")
	}
	return bin
}

// `burstlet kube get pods -A` lists the testbed's pods with the admin kubeconfig (client
// certificate) and with burstlet's own (ServiceAccount token); a broken kubeconfig is a clear
// error and a non-zero exit.
func TestBurstletKubeGetPods(t *testing.T) {
	bin := burstletBinary(t)
	ns := namespace(t, env.cluster)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "listed", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, kc := range []string{env.tb.Cluster.AdminKubeconfig, env.tb.Cluster.BurstletKubeconfig} {
		out, err := exec.Command(bin, "kube", "get", "pods", "-A", "--kubeconfig", kc).CombinedOutput()
		if err != nil {
			t.Fatalf("burstlet kube get pods -A --kubeconfig %s: %v\n%s", kc, err, out)
		}
		if !strings.Contains(string(out), ns) || !strings.Contains(string(out), "listed") {
			t.Errorf("output with %s lacks %s/listed:\n%s", kc, ns, out)
		}
	}
	out, err := exec.Command(bin, "kube", "get", "pods", "--kubeconfig", "/nonexistent/kubeconfig").CombinedOutput()
	if err == nil {
		t.Fatalf("missing kubeconfig accepted:\n%s", out)
	}
	if !strings.Contains(string(out), "/nonexistent/kubeconfig") {
		t.Errorf("error does not name the file:\n%s", out)
	}
}
