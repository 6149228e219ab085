package main

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// plan is one measured run: pods created at a steady rate, or as fast as the creators go.
type plan struct {
	pods int
	rate float64 // pods per second; 0: all at once
}

func (p plan) String() string {
	if p.rate > 0 {
		return fmt.Sprintf("%d pods at %g/s", p.pods, p.rate)
	}
	return fmt.Sprintf("%d pods at once", p.pods)
}

// podName is the name of pod i of a run.
func podName(run string, i int) string { return fmt.Sprintf("%s-%05d", run, i) }

// benchPod is a small pod bound straight to node: the scheduler is not involved, so the
// time to Running is the node agent's alone. It tolerates every taint, because the node of a
// stopped system goes NotReady between runs and the node controller would evict its pods.
func benchPod(run, node string, i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(run, i),
			Labels: map[string]string{"app": "burst", "run": run}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/bench/app:1.0",
				Env: []corev1.EnvVar{{Name: "MODE", Value: "bench"}}}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
}
