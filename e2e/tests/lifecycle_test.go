package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"burstlet/e2e/testbed"
)

// Pod lifecycle as a kubelet has it: what happens when the backend loses a pod, readiness gates,
// and deletion that waits for the backend.

// createPod creates a pod in ns and fails the test on error.
func createPod(t *testing.T, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	created, err := env.cluster.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
	return created
}

func getPod(ns, name string) (*corev1.Pod, error) {
	return env.cluster.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
}

// waitRunning waits until the pod runs on the node.
func waitRunning(t *testing.T, ns, name, node string) {
	t.Helper()
	eventually(t, 60*time.Second, name+" Running", func() error {
		p, err := getPod(ns, name)
		if err != nil {
			return err
		}
		return runningOn(p, node)
	})
}

// hasEvent reports whether the pod has an event of that type and reason whose message contains
// says.
func hasEvent(t *testing.T, ns, pod, typ, reason, says string) error {
	t.Helper()
	for _, e := range eventsFor(t, ns, pod) {
		if e.Type == typ && e.Reason == reason && strings.Contains(e.Message, says) {
			return nil
		}
	}
	return fmt.Errorf("no %s event %s saying %q on %s", typ, reason, says, pod)
}

// A backend pod that disappears is not created again silently: a restartPolicy Never pod ends
// Failed naming the loss, with its container terminated as a kubelet shows a container it can
// no longer find; an Always pod runs again with its restart count up and the lost run in
// lastState. Both get a Warning event.
func TestCciLostBackendPodIsShownNotRerunSilently(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()

	never := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "once"}, Spec: cciPodSpec(d.daemon)}
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	always := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "server"}, Spec: cciPodSpec(d.daemon)}
	never = createPod(t, ns, never)
	always = createPod(t, ns, always)
	backendUIDs := map[string]types.UID{}
	for _, p := range []*corev1.Pod{never, always} {
		p := p
		eventually(t, 60*time.Second, p.Name+" Running with its backend pod", func() error {
			got, err := getPod(ns, p.Name)
			if err != nil {
				return err
			}
			if err := runningOn(got, d.node); err != nil {
				return err
			}
			if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Running == nil {
				return fmt.Errorf("container statuses %+v", got.Status.ContainerStatuses)
			}
			b := backendPodFor(t, bns, p)
			if b == nil {
				return fmt.Errorf("no backend pod for %s", p.Name)
			}
			backendUIDs[p.Name] = b.UID
			return nil
		})
	}
	// The backend loses both pods (deleted under burstlet's feet).
	zero := int64(0)
	for _, p := range []*corev1.Pod{never, always} {
		b := backendPodFor(t, bns, p)
		if err := env.backend.CoreV1().Pods(bns).Delete(ctx, b.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, 60*time.Second, "the Never pod Failed with the loss named", func() error {
		p, err := getPod(ns, "once")
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "BackendPodLost" {
			return fmt.Errorf("phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.Reason != "ContainerStatusUnknown" ||
			cs[0].State.Terminated.ExitCode != 137 || cs[0].Ready {
			return fmt.Errorf("container statuses %+v", cs)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionFalse {
				return fmt.Errorf("Ready %s", c.Status)
			}
		}
		return hasEvent(t, ns, "once", corev1.EventTypeWarning, "BackendPodLost", "")
	})
	// Not run again: no backend pod for it, now or a little later.
	time.Sleep(3 * time.Second)
	if b := backendPodFor(t, bns, never); b != nil {
		t.Errorf("the Never pod was run again on the backend: %s", b.Name)
	}

	eventually(t, 60*time.Second, "the Always pod running again, restart counted", func() error {
		p, err := getPod(ns, "server")
		if err != nil {
			return err
		}
		if p.UID != always.UID {
			return fmt.Errorf("pod was replaced")
		}
		if err := runningOn(p, d.node); err != nil {
			return err
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].RestartCount != 1 || cs[0].State.Running == nil {
			return fmt.Errorf("container statuses %+v", cs)
		}
		if cs[0].LastTerminationState.Terminated == nil ||
			cs[0].LastTerminationState.Terminated.Reason != "ContainerStatusUnknown" {
			return fmt.Errorf("lastState %+v", cs[0].LastTerminationState)
		}
		b := backendPodFor(t, bns, always)
		if b == nil || b.UID == backendUIDs["server"] {
			return fmt.Errorf("no new backend pod")
		}
		return hasEvent(t, ns, "server", corev1.EventTypeWarning, "BackendPodLost", "")
	})
	// The restart count holds once the new backend pod reports its own statuses.
	time.Sleep(2 * time.Second)
	if p, err := getPod(ns, "server"); err != nil || p.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("restart count after the new backend pod reported: %v %+v", err, p.Status.ContainerStatuses)
	}
}

// Ready follows the pod's readiness gates as the kubelet computes it: ContainersReady and every
// gate True. Until the gate is set, the pod is not ready and its Service endpoint is not ready.
func TestCciReadinessGatesHoldReady(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	const gate = corev1.PodConditionType("example.com/load-balancer-attached")

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "gated"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "gated"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}}}
	if _, err := env.cluster.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gated", Labels: map[string]string{"app": "gated"}},
		Spec: cciPodSpec(d.daemon)}
	p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gate}}
	createPod(t, ns, p)

	endpointReady := func() (*bool, error) {
		slices, err := env.cluster.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=gated"})
		if err != nil {
			return nil, err
		}
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.TargetRef != nil && e.TargetRef.Name == "gated" {
					return e.Conditions.Ready, nil
				}
			}
		}
		return nil, fmt.Errorf("pod not in the Service's EndpointSlices")
	}
	eventually(t, 60*time.Second, "Running, containers ready, Ready False on the gate", func() error {
		got, err := getPod(ns, "gated")
		if err != nil {
			return err
		}
		if err := runningOn(got, d.node); err != nil {
			return err
		}
		var containersReady, ready *corev1.PodCondition
		for i := range got.Status.Conditions {
			switch got.Status.Conditions[i].Type {
			case corev1.ContainersReady:
				containersReady = &got.Status.Conditions[i]
			case corev1.PodReady:
				ready = &got.Status.Conditions[i]
			}
		}
		if containersReady == nil || containersReady.Status != corev1.ConditionTrue {
			return fmt.Errorf("ContainersReady %+v", containersReady)
		}
		if ready == nil || ready.Status != corev1.ConditionFalse || ready.Reason != "ReadinessGatesNotReady" ||
			!strings.Contains(ready.Message, string(gate)) {
			return fmt.Errorf("Ready %+v", ready)
		}
		r, err := endpointReady()
		if err != nil {
			return err
		}
		if r == nil || *r {
			return fmt.Errorf("endpoint ready %v, want false", r)
		}
		return nil
	})

	// Whoever owns the gate sets it: the pod becomes Ready, and so does its endpoint.
	got, err := getPod(ns, "gated")
	if err != nil {
		t.Fatal(err)
	}
	got.Status.Conditions = append(got.Status.Conditions, corev1.PodCondition{Type: gate,
		Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
	if _, err := env.cluster.CoreV1().Pods(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Ready True and the endpoint ready once the gate is True", func() error {
		got, err := getPod(ns, "gated")
		if err != nil {
			return err
		}
		gateKept := false
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
				return fmt.Errorf("Ready %+v", c)
			}
			gateKept = gateKept || (c.Type == gate && c.Status == corev1.ConditionTrue)
		}
		if !gateKept {
			return fmt.Errorf("the gate's condition was overwritten: %+v", got.Status.Conditions)
		}
		r, err := endpointReady()
		if err != nil {
			return err
		}
		if r == nil || !*r {
			return fmt.Errorf("endpoint ready %v, want true", r)
		}
		return nil
	})
}

// A deleted pod stays Terminating until its backend pod is gone; a backend pod that never
// finishes is deleted forcibly once its grace period is over, with a Warning event.
func TestCciDeletionWaitsForTheBackendPod(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()

	slow := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "slow",
		Annotations: map[string]string{testbed.DeleteDelayAnnotation: "15s"}}, Spec: cciPodSpec(d.daemon)}
	stuck := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stuck",
		Annotations: map[string]string{testbed.DeleteDelayAnnotation: "never"}}, Spec: cciPodSpec(d.daemon)}
	grace := int64(5)
	stuck.Spec.TerminationGracePeriodSeconds = &grace
	slow, stuck = createPod(t, ns, slow), createPod(t, ns, stuck)
	for _, name := range []string{"slow", "stuck"} {
		waitRunning(t, ns, name, d.node)
	}

	for _, p := range []*corev1.Pod{slow, stuck} {
		if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// While the backend pod of "slow" is still terminating, the cluster pod stays.
	deleted := time.Now()
	for time.Since(deleted) < 10*time.Second {
		b := backendPodFor(t, bns, slow)
		if b == nil {
			t.Fatalf("backend pod of slow gone after %v, before its 15s delay", time.Since(deleted))
		}
		if b.DeletionTimestamp == nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if _, err := getPod(ns, "slow"); err != nil {
			t.Fatalf("cluster pod slow gone while its backend pod is terminating: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	eventually(t, 30*time.Second, "slow gone from the cluster once its backend pod is gone", func() error {
		if _, err := getPod(ns, "slow"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster pod: %v", err)
		}
		if b := backendPodFor(t, bns, slow); b != nil {
			return fmt.Errorf("backend pod %s still there", b.Name)
		}
		return nil
	})

	// "stuck" never finishes by itself: after its 5 s grace (and burstlet's margin) burstlet
	// deletes the backend pod forcibly and says so; then the cluster pod goes.
	eventually(t, 90*time.Second, "stuck removed after its grace period, with an event", func() error {
		if b := backendPodFor(t, bns, stuck); b != nil {
			return fmt.Errorf("backend pod %s still there", b.Name)
		}
		if _, err := getPod(ns, "stuck"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("cluster pod: %v", err)
		}
		return hasEvent(t, ns, "stuck", corev1.EventTypeWarning, "BackendTerminationTimeout", "")
	})
}

// A backend pod left terminating without a cluster pod (burstlet was down when its pod was
// force-deleted) is finished by the reconcile once its grace period is over, not left billing.
func TestCciReconcileFinishesTerminatingOrphans(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()

	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan",
		Annotations: map[string]string{testbed.DeleteDelayAnnotation: "never"}}, Spec: cciPodSpec(d.daemon)}
	p = createPod(t, ns, p)
	waitRunning(t, ns, "orphan", d.node)
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	b := backendPodFor(t, bns, p)
	if b == nil {
		t.Fatal("no backend pod")
	}
	grace, zero := int64(2), int64(0)
	if err := env.backend.CoreV1().Pods(bns).Delete(ctx, b.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, "orphan", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.waitReady(60 * time.Second)
	eventually(t, 90*time.Second, "terminating orphan removed from the backend", func() error {
		if b := backendPodFor(t, bns, p); b != nil {
			return fmt.Errorf("backend pod %s still there (deletionTimestamp %v)", b.Name, b.DeletionTimestamp)
		}
		return nil
	})
}

// Uninstalling is not held up by a backend pod that never finishes terminating: `burstlet
// cleanup` forces it once its grace period is over, and the backend namespace goes.
func TestCciCleanupForcesPodsStuckTerminating(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stuck",
		Annotations: map[string]string{testbed.DeleteDelayAnnotation: "never"}}, Spec: cciPodSpec(d.daemon)}
	grace := int64(2)
	p.Spec.TerminationGracePeriodSeconds = &grace
	createPod(t, ns, p)
	waitRunning(t, ns, "stuck", d.node)
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	start := time.Now()
	if out, err := d.uninstall(); err != nil {
		t.Fatalf("burstlet cleanup with a pod stuck terminating: %v\n%s", err, out)
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("backend namespace after cleanup: %v", err)
	}
	t.Logf("cleanup took %v", time.Since(start))
}

// A backend pod lost again and again is re-created as a kubelet restarts a crashing container:
// the first time at once, the next only after a 10 s back-off, during which the pod shows its
// container waiting with CrashLoopBackOff and a BackOff event; each re-create counts one restart.
func TestCciLostBackendPodsBackOffAsAKubeletDoes(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()
	p := createPod(t, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "crashy"}, Spec: cciPodSpec(d.daemon)})
	zero := int64(0)
	lose := func() (types.UID, time.Time) {
		t.Helper()
		b := backendPodFor(t, bns, p)
		if b == nil {
			t.Fatal("no backend pod to lose")
		}
		if err := env.backend.CoreV1().Pods(bns).Delete(ctx, b.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		return b.UID, time.Now()
	}
	runningWith := func(restarts int32, not types.UID) func() error {
		return func() error {
			got, err := getPod(ns, p.Name)
			if err != nil {
				return err
			}
			if err := runningOn(got, d.node); err != nil {
				return err
			}
			cs := got.Status.ContainerStatuses
			if len(cs) != 1 || cs[0].RestartCount != restarts || cs[0].State.Running == nil {
				return fmt.Errorf("container statuses %+v", cs)
			}
			if b := backendPodFor(t, bns, p); b == nil || b.UID == not {
				return fmt.Errorf("no new backend pod")
			}
			return nil
		}
	}
	waitRunning(t, ns, p.Name, d.node)
	first, _ := lose()
	eventually(t, 30*time.Second, "re-created at once, restart 1", runningWith(1, first))

	second, lostAt := lose()
	eventually(t, 8*time.Second, "waiting with CrashLoopBackOff", func() error {
		got, err := getPod(ns, p.Name)
		if err != nil {
			return err
		}
		cs := got.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "CrashLoopBackOff" ||
			!strings.HasPrefix(cs[0].State.Waiting.Message, "back-off 10s restarting failed container=") ||
			cs[0].RestartCount != 1 || cs[0].Ready {
			return fmt.Errorf("container statuses %+v", cs)
		}
		return hasEvent(t, ns, p.Name, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container")
	})
	// Not before the back-off is over.
	if wait := time.Until(lostAt.Add(8 * time.Second)); wait > 0 {
		consistently(t, wait, "no backend pod during the back-off", func() error {
			if b := backendPodFor(t, bns, p); b != nil && b.UID != second {
				return fmt.Errorf("backend pod %s created %v after the loss", b.Name, time.Since(lostAt))
			}
			return nil
		})
	}
	eventually(t, 30*time.Second, "re-created after the back-off, restart 2", runningWith(2, second))
	t.Logf("re-created %v after the second loss", time.Since(lostAt))
}

// `burstlet cleanup` deleting the backend namespace while burstlet still runs (a Helm pre-delete
// hook): the backend pods go, and creating them again is refused while the namespace terminates
// and after it is gone. That is the backend being unavailable, shown on the pod, and no restart:
// the restart count does not run up with each refused create.
func TestCciNamespaceDeletedUnderARunningBurstletCountsNoRestarts(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()
	createPod(t, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "server"}, Spec: cciPodSpec(d.daemon)})
	waitRunning(t, ns, "server", d.node)
	if out, err := d.uninstall(); err != nil {
		t.Fatalf("burstlet cleanup while burstlet runs: %v\n%s", err, out)
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("backend namespace after cleanup: %v", err)
	}
	eventually(t, 30*time.Second, "the lost pod shown waiting, the backend's refusal on it", func() error {
		p, err := getPod(ns, "server")
		if err != nil {
			return err
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].Ready ||
			cs[0].LastTerminationState.Terminated == nil ||
			cs[0].LastTerminationState.Terminated.Reason != "ContainerStatusUnknown" {
			return fmt.Errorf("container statuses %+v", cs)
		}
		if p.Status.Reason != "ProviderFailed" || !strings.Contains(p.Status.Message, "Namespace") {
			return fmt.Errorf("reason %q message %q", p.Status.Reason, p.Status.Message)
		}
		return nil
	})
	consistently(t, 20*time.Second, "no restarts counted for refused creates", func() error {
		p, err := getPod(ns, "server")
		if err != nil {
			return err
		}
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount > 1 {
			return fmt.Errorf("container statuses %+v", cs)
		}
		return nil
	})
	if p, err := getPod(ns, "server"); err == nil {
		t.Logf("after 20 s: restarts %d, %s: %s", p.Status.ContainerStatuses[0].RestartCount,
			p.Status.Reason, p.Status.Message)
	}
}

// `kubectl debug` on a burst pod: the ephemeral container is added to the backend pod and its
// status comes back, so kubectl sees it running instead of waiting forever.
func TestCciKubectlDebugAddsAnEphemeralContainer(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	p := createPod(t, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: cciPodSpec(d.daemon)})
	waitRunning(t, ns, "web", d.node)
	kubectl := filepath.Join(os.Getenv("BURSTLET_BIN_DIR"), "kubectl")
	out, err := exec.Command(kubectl, "--kubeconfig", env.tb.Cluster.AdminKubeconfig, "-n", ns,
		"debug", "web", "--image=busybox:1.36", "--container=debugger", "--profile=general").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl debug: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "the debug container running on the backend and in the cluster", func() error {
		b := backendPodFor(t, bns, p)
		if b == nil || len(b.Spec.EphemeralContainers) != 1 || b.Spec.EphemeralContainers[0].Name != "debugger" {
			return fmt.Errorf("backend pod ephemeral containers: %+v", b)
		}
		got, err := getPod(ns, "web")
		if err != nil {
			return err
		}
		es := got.Status.EphemeralContainerStatuses
		if len(es) != 1 || es[0].Name != "debugger" || es[0].State.Running == nil {
			return fmt.Errorf("ephemeral container statuses %+v", es)
		}
		// The app container is untouched.
		if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("container statuses %+v", got.Status.ContainerStatuses)
		}
		return nil
	})
}
