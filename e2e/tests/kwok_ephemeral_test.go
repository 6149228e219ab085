package tests

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The testbed's kwok runs the ephemeral containers (kubectl debug) of a pod: added through the
// ephemeralcontainers subresource, each gets a running status, the ones there keep theirs, and
// the pod's other statuses and conditions stay as they were.
func TestKwokRunsEphemeralContainers(t *testing.T) {
	ns := plainNamespace(t)
	ctx := context.Background()
	pods := env.backend.CoreV1().Pods(ns)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "target", Labels: map[string]string{"app": "debug-target"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runningPods(t, env.backend, ns, "app=debug-target", 1, "cci-fleet-", "10.245.")
	before, err := pods.Get(ctx, "target", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	addDebugger := func(name string) {
		t.Helper()
		p, err := pods.Get(ctx, "target", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: "busybox:1.36",
				Stdin: true, TTY: true},
			TargetContainerName: "app"})
		if _, err := pods.UpdateEphemeralContainers(ctx, "target", p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// running returns the pod once every named ephemeral container has a running status.
	running := func(names ...string) *corev1.Pod {
		t.Helper()
		var got *corev1.Pod
		eventually(t, 30*time.Second, fmt.Sprintf("ephemeral containers %v running", names), func() error {
			p, err := pods.Get(ctx, "target", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, name := range names {
				found := false
				for _, s := range p.Status.EphemeralContainerStatuses {
					if s.Name == name {
						found = s.State.Running != nil && !s.State.Running.StartedAt.IsZero()
					}
				}
				if !found {
					return fmt.Errorf("statuses %+v", p.Status.EphemeralContainerStatuses)
				}
			}
			got = p
			return nil
		})
		return got
	}

	addDebugger("debugger")
	first := running("debugger")
	if !reflect.DeepEqual(first.Status.ContainerStatuses, before.Status.ContainerStatuses) {
		t.Errorf("container statuses changed:\n%+v\nwas\n%+v", first.Status.ContainerStatuses,
			before.Status.ContainerStatuses)
	}
	if !reflect.DeepEqual(first.Status.Conditions, before.Status.Conditions) ||
		first.Status.Phase != corev1.PodRunning || first.Status.PodIP != before.Status.PodIP {
		t.Errorf("pod status changed: %+v, was %+v", first.Status, before.Status)
	}
	s := first.Status.EphemeralContainerStatuses[0]
	if s.Image != "busybox:1.36" || s.Ready {
		t.Errorf("ephemeral container status %+v", s)
	}

	addDebugger("second")
	both := running("debugger", "second")
	for _, s := range both.Status.EphemeralContainerStatuses {
		if s.Name == "debugger" && !s.State.Running.StartedAt.Equal(&first.Status.EphemeralContainerStatuses[0].State.Running.StartedAt) {
			t.Errorf("the first one restarted: %v, was %v", s.State.Running.StartedAt,
				first.Status.EphemeralContainerStatuses[0].State.Running.StartedAt)
		}
	}
}
