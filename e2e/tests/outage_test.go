package tests

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"burstlet/e2e/testbed"
)

const (
	providerUnavailable      = corev1.NodeConditionType("ProviderUnavailable")
	providerUnavailableTaint = "virtual-kubelet.io/provider-unavailable"
)

// backendAPIServer is the backend plane's kube-apiserver process.
func backendAPIServer(t *testing.T) *testbed.Process {
	t.Helper()
	for _, p := range env.tb.Backend.Processes {
		if p.Name == "kube-apiserver" {
			return p
		}
	}
	t.Fatal("no kube-apiserver among the backend plane's processes")
	return nil
}

func nodeCondition(n *corev1.Node, ct corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == ct {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func nodeTaint(n *corev1.Node, key string) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == key {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

// outageReport records the first violation of each kind seen while sampling, so a broken run
// says everything that went wrong instead of only the first thing.
type outageReport struct {
	t    *testing.T
	seen map[string]bool
}

func (r *outageReport) fail(kind, format string, args ...any) {
	if r.seen[kind] {
		return
	}
	r.seen[kind] = true
	r.t.Errorf("at %s: "+format, append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// The backend API server stops answering for two minutes (SIGSTOP): the virtual node keeps its
// lease and stays Ready, so the cluster neither taints it unreachable/not-ready nor evicts the
// burst pods on it; it reports ProviderUnavailable and a NoSchedule taint instead, so no new
// pod lands there meanwhile. Once the backend answers again, the condition and taint go, the
// waiting pod runs, and the old pod still runs the same backend pod.
func TestCciBackendOutageKeepsNodeAndPods(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()

	five := int64(5)
	spec := cciPodSpec(d.daemon)
	for _, key := range []string{"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"} {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: key,
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &five})
	}
	burst := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "burst"}, Spec: spec}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, burst, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var burstUID, backendUID string
	eventually(t, 90*time.Second, "burst pod Running on the backend", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "burst", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := runningOn(p, d.node); err != nil {
			return err
		}
		b := backendPodFor(t, bns, p)
		if b == nil {
			return fmt.Errorf("no backend pod for %s", p.Name)
		}
		burstUID, backendUID = string(p.UID), string(b.UID)
		return nil
	})

	apiserver := backendAPIServer(t)
	// Whatever happens below, the shared testbed is never left frozen.
	t.Cleanup(func() { _ = syscall.Kill(-apiserver.Pid, syscall.SIGCONT) })
	if err := syscall.Kill(-apiserver.Pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP the backend kube-apiserver: %v", err)
	}
	stopped := time.Now()
	t.Logf("backend kube-apiserver (pid %d) stopped", apiserver.Pid)

	report := &outageReport{t: t, seen: map[string]bool{}}
	var conditionSeen, taintSeen, lateCreated bool
	var maxLeaseAge time.Duration
	outage := 2 * time.Minute
	for time.Since(stopped) < outage {
		time.Sleep(time.Second)
		lease, err := env.cluster.CoordinationV1().Leases("kube-node-lease").Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			report.fail("lease-get", "lease: %v", err)
		} else if lease.Spec.RenewTime != nil {
			age := time.Since(lease.Spec.RenewTime.Time)
			if age > maxLeaseAge {
				maxLeaseAge = age
			}
			if age > 20*time.Second {
				report.fail("lease-gap", "lease not renewed for %v (renewTime %v)", age.Round(time.Second),
					lease.Spec.RenewTime.Time)
			}
		}
		node, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			report.fail("node-get", "node: %v", err)
			continue
		}
		for _, key := range []string{"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"} {
			if taint := nodeTaint(node, key); taint != nil {
				report.fail("taint-"+key, "node tainted %s:%s", key, taint.Effect)
			}
		}
		if err := nodeReady(node); err != nil {
			report.fail("ready", "node not Ready: %v", err)
		}
		if c := nodeCondition(node, providerUnavailable); c != nil && c.Status == corev1.ConditionTrue {
			if !conditionSeen {
				t.Logf("ProviderUnavailable=True after %v: %s: %s", time.Since(stopped).Round(time.Second),
					c.Reason, c.Message)
			}
			conditionSeen = true
		}
		if taint := nodeTaint(node, providerUnavailableTaint); taint != nil {
			if taint.Effect != corev1.TaintEffectNoSchedule {
				report.fail("taint-effect", "taint %s has effect %s, want NoSchedule", taint.Key, taint.Effect)
			}
			if !taintSeen {
				t.Logf("%s taint after %v", providerUnavailableTaint, time.Since(stopped).Round(time.Second))
			}
			taintSeen = true
		}
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "burst", metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			report.fail("burst-gone", "burst pod deleted")
		case err != nil:
			report.fail("burst-get", "burst pod: %v", err)
		case string(p.UID) != burstUID:
			report.fail("burst-replaced", "burst pod replaced (uid %s, was %s)", p.UID, burstUID)
		case p.DeletionTimestamp != nil:
			report.fail("burst-terminating", "burst pod terminating since %v", p.DeletionTimestamp)
		}
		// A new pod once the node is tainted: the scheduler must keep it off the node.
		if taintSeen && !lateCreated {
			late := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Spec: cciPodSpec(d.daemon)}
			if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, late, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			lateCreated = true
		}
		if lateCreated {
			l, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "late", metav1.GetOptions{})
			if err != nil {
				report.fail("late-get", "late pod: %v", err)
			} else if l.Spec.NodeName != "" {
				report.fail("late-bound", "new pod bound to %s during the outage", l.Spec.NodeName)
			}
		}
	}
	t.Logf("outage over after %v; oldest lease seen %v", time.Since(stopped).Round(time.Second),
		maxLeaseAge.Round(time.Second))
	if !conditionSeen {
		t.Errorf("no ProviderUnavailable=True condition during the outage")
	}
	if !taintSeen {
		t.Errorf("no %s taint during the outage", providerUnavailableTaint)
	}
	if err := syscall.Kill(-apiserver.Pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT the backend kube-apiserver: %v", err)
	}

	eventually(t, 90*time.Second, "ProviderUnavailable=False and the taint removed", func() error {
		node, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := nodeCondition(node, providerUnavailable)
		if c == nil || c.Status != corev1.ConditionFalse {
			return fmt.Errorf("ProviderUnavailable %+v", c)
		}
		if taint := nodeTaint(node, providerUnavailableTaint); taint != nil {
			return fmt.Errorf("still tainted %+v", *taint)
		}
		return nodeReady(node)
	})
	if !lateCreated {
		late := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Spec: cciPodSpec(d.daemon)}
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, late, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 90*time.Second, "the new pod Running on the backend", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "late", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := runningOn(p, d.node); err != nil {
			return err
		}
		if backendPodFor(t, bns, p) == nil {
			return fmt.Errorf("no backend pod for %s", p.Name)
		}
		return nil
	})
	p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "burst", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("burst pod after the outage: %v", err)
	}
	if string(p.UID) != burstUID {
		t.Fatalf("burst pod replaced: uid %s, was %s", p.UID, burstUID)
	}
	if err := runningOn(p, d.node); err != nil {
		t.Errorf("burst pod after the outage: %v", err)
	}
	if b := backendPodFor(t, bns, p); b == nil || string(b.UID) != backendUID {
		t.Errorf("burst pod's backend pod after the outage: %v, was uid %s", b, backendUID)
	}
}
