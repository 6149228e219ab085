package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const burstLabel = "virtual-kubelet.io/burst-to-cci"

// startPolicyDaemon runs burstlet (fake provider) with its admission webhook on a free loopback
// port, and waits until the webhook is registered with the cluster. The registration is removed
// when the test ends (burstlet leaves it: failurePolicy Ignore).
func startPolicyDaemon(t *testing.T) *daemon {
	t.Helper()
	config := filepath.Join(t.TempDir(), "burstlet.yaml")
	body := fmt.Sprintf("admission:\n  listen: 127.0.0.1:%d\n  hosts: [127.0.0.1]\n", freePort(t))
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", config)
	waitWebhookRegistered(t, d.node)
	return d
}

// waitWebhookRegistered waits until node's burstlet registered its webhook, and removes the
// registration when the test ends (burstlet leaves it: failurePolicy Ignore).
func waitWebhookRegistered(t *testing.T, node string) {
	t.Helper()
	name := "burstlet-" + node
	t.Cleanup(func() {
		_ = env.cluster.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name,
			metav1.DeleteOptions{})
	})
	eventually(t, 30*time.Second, "webhook registered", func() error {
		c, err := env.cluster.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), name,
			metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(c.Webhooks) != 1 || c.Webhooks[0].FailurePolicy == nil || *c.Webhooks[0].FailurePolicy != "Ignore" {
			return fmt.Errorf("webhooks %+v", c.Webhooks)
		}
		return nil
	})
}

// labelledDeployment is a Deployment of n pods asking cpu each, labelled with the burst policy
// `value` on the Deployment only (not its pod template), and with no selector or toleration
// for the virtual node.
func labelledDeployment(t *testing.T, ns, name, value string, n int32, cpu string) {
	t.Helper()
	labels := map[string]string{"app": name}
	list := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{burstLabel: value}},
		Spec: appsv1.DeploymentSpec{Replicas: int32p(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1",
					Resources: corev1.ResourceRequirements{Requests: list}}}}}}}
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// placement waits until the Deployment's n pods are all scheduled (or, with pending > 0, that
// many stay Pending) and returns how many run on the virtual node and elsewhere.
func placement(t *testing.T, ns, app, node string, n, pending int) (virtual, local int) {
	t.Helper()
	eventually(t, 90*time.Second, fmt.Sprintf("%s: %d pods, %d unscheduled", app, n, pending), func() error {
		pods := podsOf(t, ns, "app="+app)
		virtual, local = 0, 0
		unscheduled := 0
		for _, p := range pods {
			switch p.Spec.NodeName {
			case "":
				unscheduled++
			case node:
				virtual++
			default:
				local++
			}
		}
		if len(pods) != n || unscheduled != pending {
			return fmt.Errorf("%d pods: %d on the virtual node, %d local, %d unscheduled", len(pods), virtual, local,
				unscheduled)
		}
		return nil
	})
	return virtual, local
}

// The burst-to-cci label on a Deployment places its pods, through burstlet's webhook and the
// cluster's real scheduler: enforce on the virtual node, off never there, localPrefer and auto
// there only for what the workers (2 × 4 CPU) cannot take; each pod names the rule that placed
// it; an unknown value is denied with the allowed ones.
func TestBurstPolicyLabelPlacesPods(t *testing.T) {
	d := startPolicyDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()

	labelledDeployment(t, ns, "always", "enforce", 3, "100m")
	if v, l := placement(t, ns, "always", d.node, 3, 0); v != 3 || l != 0 {
		t.Errorf("enforce: %d on the virtual node, %d local; want 3, 0", v, l)
	}
	for _, p := range podsOf(t, ns, "app=always") {
		if got := p.Annotations["burstlet.io/burst-rule"]; !strings.Contains(got, "on Deployment always") {
			t.Errorf("%s: burst-rule annotation %q", p.Name, got)
		}
	}

	// localPrefer: 12 × 1 CPU on two workers of 4 CPU each fill the workers first.
	free := workerFreeCPU(t)
	labelledDeployment(t, ns, "peak", "localPrefer", 12, "1")
	v, l := placement(t, ns, "peak", d.node, 12, 0)
	if l != free || v != 12-free {
		t.Errorf("localPrefer: %d local, %d on the virtual node; want %d and %d (free worker CPUs: %d)", l, v, free,
			12-free, free)
	}
	if err := env.cluster.AppsV1().Deployments(ns).Delete(ctx, "peak", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "peak pods gone", func() error {
		if n := len(podsOf(t, ns, "app=peak")); n > 0 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})

	// auto: the scheduler decides, ordinary nodes ranked first (the virtual node's
	// PreferNoSchedule taint outweighs spreading and least-allocated): the workers fill first.
	free = workerFreeCPU(t)
	labelledDeployment(t, ns, "spread", "auto", int32(free+4), "1")
	v, l = placement(t, ns, "spread", d.node, free+4, 0)
	t.Logf("auto: %d local, %d on the virtual node (free worker CPUs: %d)", l, v, free)
	if l != free || v != 4 {
		t.Errorf("auto: %d local, %d on the virtual node; want %d and 4", l, v, free)
	}
	// Scaled in by as many as burst: the burst pods go (their deletion cost is lower).
	eventually(t, 60*time.Second, "burst pods carry their deletion cost", func() error {
		for _, p := range podsOf(t, ns, "app=spread") {
			if p.Spec.NodeName == d.node && p.Annotations["controller.kubernetes.io/pod-deletion-cost"] != "-100" {
				return fmt.Errorf("%s: annotations %v", p.Name, p.Annotations)
			}
		}
		return nil
	})
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, l)
	if _, err := env.cluster.AppsV1().Deployments(ns).Patch(ctx, "spread", types.MergePatchType, []byte(patch),
		metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "only the local pods left", func() error {
		pods := podsOf(t, ns, "app=spread")
		live := 0
		for _, p := range pods {
			if p.DeletionTimestamp != nil {
				continue
			}
			live++
			if p.Spec.NodeName == d.node {
				return fmt.Errorf("%s kept on the virtual node", p.Name)
			}
		}
		if live != l {
			return fmt.Errorf("%d live pods", live)
		}
		return nil
	})
	if err := env.cluster.AppsV1().Deployments(ns).Delete(ctx, "spread", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "spread pods gone", func() error {
		if n := len(podsOf(t, ns, "app=spread")); n > 0 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})

	// off: what the workers cannot take stays Pending.
	free = workerFreeCPU(t)
	labelledDeployment(t, ns, "never", "off", int32(free+2), "1")
	if v, _ := placement(t, ns, "never", d.node, free+2, 2); v != 0 {
		t.Errorf("off: %d pods on the virtual node", v)
	}

	// An unknown value: the pod is denied, naming the allowed values.
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bad", Labels: map[string]string{burstLabel: "always"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1"}}}}
	_, err := env.cluster.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "is not one of auto, localPrefer, enforce, off") {
		t.Errorf("a pod with burst-to-cci=always: %v", err)
	}
}

// workerFreeCPU is how many whole CPUs the cluster's kwok workers have left for new pods.
func workerFreeCPU(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	nodes, err := env.cluster.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/worker"})
	if err != nil {
		t.Fatal(err)
	}
	free := 0
	for _, n := range nodes.Items {
		pods, err := env.cluster.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
		if err != nil {
			t.Fatal(err)
		}
		left := n.Status.Allocatable.Cpu().MilliValue()
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			for _, c := range p.Spec.Containers {
				left -= c.Resources.Requests.Cpu().MilliValue()
			}
		}
		free += int(left / 1000)
	}
	return free
}

// The label on a StatefulSet, a Job and a CronJob (not on their pod templates) places their pods
// too; a DaemonSet that tolerates every taint gets no pod on the virtual node, and none is
// created there and failed over and over.
func TestBurstPolicyWorkloadKindsAndDaemonSets(t *testing.T) {
	d := startPolicyDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	enforce := map[string]string{burstLabel: "enforce"}
	podSpec := func(app string, restart corev1.RestartPolicy) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{RestartPolicy: restart,
				Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1"}}}}
	}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: enforce},
		Spec: appsv1.StatefulSetSpec{Replicas: int32p(2), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: podSpec("db", corev1.RestartPolicyAlways)}}
	if _, err := env.cluster.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once", Labels: enforce},
		Spec: batchv1.JobSpec{Template: podSpec("once", corev1.RestartPolicyNever)}}
	if _, err := env.cluster.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick", Labels: enforce},
		Spec: batchv1.CronJobSpec{Schedule: "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podSpec("tick", corev1.RestartPolicyNever)}}}}
	if _, err := env.cluster.BatchV1().CronJobs(ns).Create(ctx, cron, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tolerateAll := podSpec("agent", corev1.RestartPolicyAlways)
	tolerateAll.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: tolerateAll}}
	if _, err := env.cluster.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, app := range []string{"db", "once"} {
		eventually(t, 60*time.Second, app+" pods on the virtual node", func() error {
			pods := podsOf(t, ns, "app="+app)
			if len(pods) == 0 {
				return fmt.Errorf("no pods")
			}
			for _, p := range pods {
				if p.Spec.NodeName != d.node {
					return fmt.Errorf("%s on %q", p.Name, p.Spec.NodeName)
				}
			}
			return nil
		})
	}
	// The CronJob's first Job starts within its minute.
	eventually(t, 90*time.Second, "a CronJob pod on the virtual node", func() error {
		pods := podsOf(t, ns, "app=tick")
		if len(pods) == 0 {
			return fmt.Errorf("no pods yet")
		}
		if pods[0].Spec.NodeName != d.node {
			return fmt.Errorf("%s on %q", pods[0].Name, pods[0].Spec.NodeName)
		}
		return nil
	})
	// The DaemonSet runs on the workers and never on the virtual node.
	eventually(t, 60*time.Second, "agent pods on the workers", func() error {
		if n := len(podsOf(t, ns, "app=agent")); n < 2 {
			return fmt.Errorf("%d agent pods", n)
		}
		return nil
	})
	consistently(t, 2*time.Minute, "no agent pod on the virtual node", func() error {
		for _, p := range podsOf(t, ns, "app=agent") {
			if p.Spec.NodeName == d.node {
				return fmt.Errorf("%s on the virtual node", p.Name)
			}
		}
		return nil
	})
	events, err := env.cluster.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "DaemonSet" && (e.Reason == "FailedDaemonPod" || e.Reason == "SuccessfulDelete") {
			t.Errorf("DaemonSet churn: %s %s", e.Reason, e.Message)
		}
	}
}

// With the cci provider the webhook asks the provider's own rules: an enforce pod CCI cannot run
// (hostNetwork) is denied naming the rule; an auto one is admitted unchanged and stays local.
func TestBurstPolicyEnforceRefusesWhatTheBackendCannotRun(t *testing.T) {
	d := startCciDaemon(t, withAdmission())
	waitWebhookRegistered(t, d.node)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	hostNet := func(name, value string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{burstLabel: value}},
			Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}}}}}
	}
	_, err := env.cluster.CoreV1().Pods(ns).Create(ctx, hostNet("forced", "enforce"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "is enforce, but the backend cannot run this pod") ||
		!strings.Contains(err.Error(), "hostNetwork") {
		t.Errorf("enforce hostNetwork pod: %v", err)
	}
	p, err := env.cluster.CoreV1().Pods(ns).Create(ctx, hostNet("maybe", "auto"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tol := range p.Spec.Tolerations {
		if tol.Key == "virtual-kubelet.io/provider" {
			t.Errorf("auto hostNetwork pod made eligible: %+v", p.Spec.Tolerations)
		}
	}
	// Uninstalled: `burstlet cleanup` removes the registration with the backend namespace.
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out, err := cleanup(d.config, "--kubeconfig", env.tb.Cluster.BurstletKubeconfig, "--node-name", d.node); err != nil ||
		!strings.Contains(out, "webhook registration burstlet-"+d.node+" is gone") {
		t.Fatalf("burstlet cleanup: %v\n%s", err, out)
	}
	if _, err := env.cluster.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "burstlet-"+d.node,
		metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("webhook registration after cleanup: %v", err)
	}
}
