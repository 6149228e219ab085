package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A pod that sets a field CCI's Kubernetes 1.19 API does not know (a native sidecar, a gRPC probe,
// a sleep hook) is refused with the field named and never reaches the backend, where the field
// would be dropped without a word; the same pod without it runs.
func TestCciRefusesFieldsTheBackendReleaseLacks(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	always := corev1.ContainerRestartPolicyAlways
	cases := map[string]struct {
		edit  func(*corev1.PodSpec)
		field string
	}{
		"sidecar": {func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy:1", RestartPolicy: &always}}
		}, "spec.initContainers[0].restartPolicy (Kubernetes 1.28)"},
		"grpc-probe": {func(s *corev1.PodSpec) {
			s.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				GRPC: &corev1.GRPCAction{Port: 9000}}}
		}, "spec.containers[0].livenessProbe.grpc (Kubernetes 1.23)"},
		"sleep-hook": {func(s *corev1.PodSpec) {
			s.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
				Sleep: &corev1.SleepAction{Seconds: 5}}}
		}, "spec.containers[0].lifecycle.preStop.sleep (Kubernetes 1.29)"},
	}
	for name, c := range cases {
		spec := cciPodSpec(d.daemon)
		c.edit(&spec)
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The same kinds of pods written for 1.19: an init container that ends, an exec probe and
	// hook; they run.
	old := cciPodSpec(d.daemon)
	old.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1"}}
	old.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9000)}}}
	old.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "written-for-1-19"},
		Spec: old}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			eventually(t, 60*time.Second, name+" refused", func() error {
				p, err := getPod(ns, name)
				if err != nil {
					return err
				}
				if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "FieldNotSupportedByBackend" {
					return fmt.Errorf("phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
				}
				if !strings.Contains(p.Status.Message, c.field) || !strings.Contains(p.Status.Message, "Kubernetes 1.19") {
					return fmt.Errorf("message %q does not name %s and the backend's 1.19", p.Status.Message, c.field)
				}
				return nil
			})
			p, err := getPod(ns, name)
			if err != nil {
				t.Fatal(err)
			}
			if b := backendPodFor(t, d.backendNamespace(), p); b != nil {
				t.Errorf("backend pod %s exists for a refused pod", b.Name)
			}
			if err := hasEvent(t, ns, name, corev1.EventTypeWarning, "FieldNotSupportedByBackend", c.field); err != nil {
				t.Error(err)
			}
		})
	}
	waitRunning(t, ns, "written-for-1-19", d.node)
}
