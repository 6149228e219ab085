package tests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A release with `replicas: 2` (leader election): helm installs two pods, each run here as a
// local burstlet (localPod: the pod's POD_NAME and POD_NAMESPACE, the release's ServiceAccount).
// Exactly one leads: it holds the node's Lease and labels its pod burstlet.io/leader=true, and the
// release's Service's EndpointSlice (the testbed's endpoint slice controller) lists that pod only.
// SIGKILLed, the leader's process leaves the Lease unrenewed; the other replica takes it and its
// pod's label; the killed one, restarted in its pod as a kubelet would, removes its stale label
// and stands by, so the Service again sends to the leader only. The uninstall's hook scales the
// Deployment to 0 and waits for both pods before its cleanup.
func TestHelmReleaseWithTwoReplicasLeadsWithOne(t *testing.T) {
	ctx := context.Background()
	rel := newHelmRelease(t, map[string]any{"replicas": 2})
	lease := "burstlet-" + rel.node
	service := "burstlet-" + rel.node
	helm(t, "install", rel.name, chartDir, "-n", rel.ns, "-f", rel.valuesFile)

	podA := runningPod(t, rel.ns, rel.deploymentPods)
	podB := runningPod(t, rel.ns, rel.deploymentPods, podA.Name)
	replicas := map[string]*daemon{
		podA.Name: newLocalPod(t, podA).startDaemon(t, rel.node),
		podB.Name: newLocalPod(t, podB).startDaemon(t, rel.node),
	}
	for _, d := range replicas {
		d.waitReady(90 * time.Second) // the standby too: Ready, serving nothing
	}

	// The one leader: its pod labelled, the Lease its (identity <pod name>_<suffix>), and the
	// Service's endpoints that pod only.
	endpoints := func() ([]string, error) {
		slices, err := env.cluster.DiscoveryV1().EndpointSlices(rel.ns).List(ctx, metav1.ListOptions{
			LabelSelector: "kubernetes.io/service-name=" + service})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.TargetRef != nil {
					out = append(out, e.TargetRef.Name)
				}
			}
		}
		sort.Strings(out)
		return out, nil
	}
	oneLeader := func(want string) func() error {
		return func() error {
			got := leaders(t, rel.ns)
			if len(got) != 1 || (want != "" && got[0] != want) {
				return fmt.Errorf("pods labelled leader %v, want one (%q)", got, want)
			}
			if h := leaseHolder(t, rel.ns, lease); !strings.HasPrefix(h, got[0]+"_") {
				return fmt.Errorf("Lease %s held by %q, the labelled pod is %s", lease, h, got[0])
			}
			eps, err := endpoints()
			if err != nil {
				return err
			}
			if len(eps) != 1 || eps[0] != got[0] {
				return fmt.Errorf("Service %s endpoints %v, want the leader %s only", service, eps, got[0])
			}
			return nil
		}
	}
	eventually(t, 60*time.Second, "one leader, the Service's only endpoint", oneLeader(""))
	leader := leaders(t, rel.ns)[0]
	standby := podA.Name
	if leader == podA.Name {
		standby = podB.Name
	}
	consistently(t, 3*time.Second, "one leader, the Service's only endpoint", oneLeader(leader))
	if got := replicas[standby].metric("burstlet_leader"); got != "0" {
		t.Errorf("standby %s burstlet_leader %q", standby, got)
	}

	// The leader's process killed: the standby takes over within the lease duration (15s).
	killed := time.Now()
	_ = replicas[leader].stop(syscall.SIGKILL)
	eventually(t, 40*time.Second, "the standby leading", func() error {
		if h := leaseHolder(t, rel.ns, lease); !strings.HasPrefix(h, standby+"_") {
			return fmt.Errorf("Lease held by %q", h)
		}
		if !contains(leaders(t, rel.ns), standby) {
			return fmt.Errorf("pods labelled leader %v", leaders(t, rel.ns))
		}
		return nil
	})
	t.Logf("the standby took over %.1fs after the leader was killed", time.Since(killed).Seconds())
	// Its kubelet restarts the killed container in the same pod: it clears its label, stands by.
	replicas[leader].start()
	eventually(t, 60*time.Second, "the new leader the Service's only endpoint", oneLeader(standby))
	replicas[leader].waitReady(60 * time.Second)
	if got := replicas[leader].metric("burstlet_leader"); got != "0" {
		t.Errorf("restarted %s burstlet_leader %q, want it standing by", leader, got)
	}

	// helm uninstall: the hook scales the Deployment to 0; both pods go (their burstlets stop)
	// before its cleanup starts.
	uninstall := startUninstall(t, rel.name, rel.ns, rel.instance)
	hookRun := newLocalPod(t, uninstall.jobPod).runAsync(3 * time.Minute)
	for _, p := range []string{podA.Name, podB.Name} {
		pod := podA
		if p == podB.Name {
			pod = podB
		}
		waitTerminating(t, pod, 60*time.Second)
		if err := replicas[p].stop(syscall.SIGTERM); err != nil {
			t.Errorf("burstlet of %s at SIGTERM: %v", p, err)
		}
		finishPod(t, pod)
	}
	r := uninstall.hookDone(t, hookRun)
	deployment := fmt.Sprintf("Deployment %s/%s", rel.ns, "burstlet-"+rel.node)
	if r.err != nil || r.code != 0 || !strings.Contains(r.out, deployment+" scaled to 0 (from 2 replicas)") ||
		!strings.Contains(r.out, "no pod of "+deployment+" is left (2 stopped") ||
		!strings.Contains(r.out, "backend namespace "+rel.bns+" is gone") {
		t.Fatalf("the hook's burstlet cleanup: exit %d %v:\n%s", r.code, r.err, r.out)
	}
	select {
	case err := <-uninstall.done:
		if err != nil || !strings.Contains(uninstall.out.String(), "uninstalled") {
			t.Fatalf("helm uninstall: %v\n%s", err, uninstall.out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("helm uninstall still runs:\n%s", uninstall.out.String())
	}
	eventually(t, 30*time.Second, "nothing of the release in the cluster", func() error {
		return releaseLeftovers(ctx, rel.ns, rel.instance, rel.name)
	})
}
