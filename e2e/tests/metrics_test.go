package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"burstlet/e2e/testbed"
)

// getMetrics reads a metrics.k8s.io/v1beta1 path of a plane into out.
func getMetrics(ctx context.Context, cs kubernetes.Interface, path string, out any) error {
	data, err := cs.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/" + path).DoRaw(ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// The backend plane's metrics-server serves PodMetrics of a kwok pod, from the usage its
// annotations give kwok; the cluster plane serves metrics.k8s.io too (for burstlet's node).
func TestBackendPodMetrics(t *testing.T) {
	if env.tb.Backend.MetricsServer == nil || env.tb.Cluster.MetricsServer == nil {
		t.Fatal("the test bed runs no metrics-server (testbed.Config.Metrics)")
	}
	ns := plainNamespace(t)
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Labels: map[string]string{"app": "metrics"},
			Annotations: map[string]string{testbed.UsageCPUAnnotation: "250m", testbed.UsageMemoryAnnotation: "64Mi"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"},
			{Name: "sidecar", Image: "busybox"}}},
	}
	if _, err := env.backend.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningPods(t, env.backend, ns, "app=metrics", 1, "cci-fleet-", "10.245.")
	var pm metricsv1beta1.PodMetrics
	// CPU needs two scrapes of the running container.
	eventually(t, 6*testbed.MetricsResolution+30*time.Second, "PodMetrics of busy", func() error {
		return getMetrics(ctx, env.backend, "namespaces/"+ns+"/pods/busy", &pm)
	})
	if len(pm.Containers) != 2 {
		t.Fatalf("containers %+v", pm.Containers)
	}
	for _, c := range pm.Containers {
		cpu, mem := c.Usage.Cpu(), c.Usage.Memory()
		if cpu.MilliValue() < 240 || cpu.MilliValue() > 260 || !mem.Equal(resource.MustParse("64Mi")) {
			t.Errorf("container %s usage cpu %s memory %s, want 250m and 64Mi", c.Name, cpu, mem)
		}
	}
	p, err := env.backend.CoreV1().Pods(ns).Get(ctx, "busy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var nm metricsv1beta1.NodeMetrics
	eventually(t, 3*testbed.MetricsResolution, "NodeMetrics of "+p.Spec.NodeName, func() error {
		if err := getMetrics(ctx, env.backend, "nodes/"+p.Spec.NodeName, &nm); err != nil {
			return err
		}
		if nm.Usage.Cpu().MilliValue() < 490 {
			return fmt.Errorf("node usage %v, want at least the pod's 500m", nm.Usage)
		}
		return nil
	})

	var nodes metricsv1beta1.NodeMetricsList
	if err := getMetrics(ctx, env.cluster, "nodes", &nodes); err != nil {
		t.Errorf("the cluster plane's metrics.k8s.io: %v", err)
	}
}
