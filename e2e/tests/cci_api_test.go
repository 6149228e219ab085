package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
	// The same kinds of pods written for 1.19 (and CCI's probes): an init container that ends, an
	// HTTP GET probe and an exec hook; they run.
	old := cciPodSpec(d.daemon)
	old.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1"}}
	old.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(9000)}}}
	old.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "written-for-1-19"},
		Spec: old}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			refusedByBurstlet(t, d, ns, name, "FieldNotSupportedByBackend", c.field, "Kubernetes 1.19")
		})
	}
	waitRunning(t, ns, "written-for-1-19", d.node)
}

// refusedByBurstlet waits until the pod is Failed with reason and a message containing says,
// with a Warning event of that reason, and checks that no backend pod was made for it.
func refusedByBurstlet(t *testing.T, d *cciDaemon, ns, name, reason string, says ...string) {
	t.Helper()
	eventually(t, 60*time.Second, name+" refused", func() error {
		p, err := getPod(ns, name)
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != reason {
			return fmt.Errorf("phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		for _, s := range says {
			if !strings.Contains(p.Status.Message, s) {
				return fmt.Errorf("message %q does not say %q", p.Status.Message, s)
			}
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
	if d.account != "" {
		// Refused before anything was sent: the CCI gateway never saw the pod.
		if lines := gatewayLines(t, "method=POST", "/namespaces/"+d.backendNamespace()+"/pods", "pod=", name); len(lines) > 0 {
			t.Errorf("the pod reached the CCI gateway: %v", lines)
		}
	}
	if err := hasEvent(t, ns, name, corev1.EventTypeWarning, reason, says[0]); err != nil {
		t.Error(err)
	}
}

// CCI's limits beyond resources: more than 5 containers, a privileged container, a startup or TCP
// probe, over 20Gi of ephemeral storage; each refused with its rule named, nothing sent.
func TestCciRefusesWhatCciLimits(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	privileged := true
	cases := []struct {
		name, reason, says string
		edit               func(*corev1.PodSpec)
	}{
		{"six-containers", "TooManyContainers", "6 containers, CCI runs at most 5", func(s *corev1.PodSpec) {
			for i := 1; i < 6; i++ {
				s.Containers = append(s.Containers, corev1.Container{Name: fmt.Sprintf("extra%d", i), Image: "busybox:1"})
			}
		}},
		{"privileged", "PrivilegedContainer", "spec.containers[0].securityContext.privileged", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &privileged}
		}},
		{"startup-probe", "UnsupportedProbe", "spec.containers[0].startupProbe", func(s *corev1.PodSpec) {
			s.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80)}}}
		}},
		{"tcp-probe", "UnsupportedProbe", "spec.containers[0].readinessProbe.tcpSocket", func(s *corev1.PodSpec) {
			s.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
		}},
		{"big-disk", "EphemeralStorageTooLarge", "asks for 21Gi of ephemeral storage, CCI gives a pod at most 20Gi",
			func(s *corev1.PodSpec) {
				s.Containers[0].Resources.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse("21Gi")
			}},
	}
	for _, c := range cases {
		spec := cciPodSpec(d.daemon)
		c.edit(&spec)
		if _, err := env.cluster.CoreV1().Pods(ns).Create(context.Background(),
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { refusedByBurstlet(t, d, ns, c.name, c.reason, c.says) })
	}
}
