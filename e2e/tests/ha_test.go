package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"burstlet/e2e/testbed"
)

// Two replicas of one virtual node (leader election, the chart's replicas: 2): the holder of the
// node's Lease works, the other stands by with warm caches.

// leaderElectionConfig is the config section both replicas share; the Lease lives in `ns`.
// Durations are the defaults (15s, 10s, 2s): what docs/reliability.md reports.
func leaderElectionConfig(ns string) string {
	return fmt.Sprintf("leaderElection:\n  enabled: true\n  namespace: %s\n", ns)
}

// replicaOf starts a second burstlet process for d's node with d's arguments (its config file),
// on ports of its own. It is stopped when the test ends.
func replicaOf(t *testing.T, d *daemon) *daemon {
	t.Helper()
	r := &daemon{t: t, node: d.node, logs: filepath.Join(t.TempDir(), "burstlet-replica.log"), exec: d.exec,
		nodeIP: d.nodeIP}
	r.health = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var err error
	if r.kubeletPort, err = testbed.FreePort(r.nodeIP); err != nil {
		t.Fatal(err)
	}
	r.env = append(os.Environ(), "POD_NAME=replica-b")
	args := append([]string(nil), d.args...)
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--health-listen":
			args[i+1] = r.health
		case "--kubelet-port":
			args[i+1] = fmt.Sprint(r.kubeletPort)
		}
	}
	r.args = args
	r.start()
	t.Cleanup(func() {
		r.stop(syscall.SIGTERM)
		if t.Failed() {
			r.printLogs()
		}
	})
	return r
}

func leaseHolder(t *testing.T, ns, name string) string {
	t.Helper()
	l, err := env.cluster.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		if isNotFound(err) {
			return ""
		}
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// metric reads one sample of a family without labels from /metrics ("" when absent).
func (d *daemon) metric(name string) string {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + d.health + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

// replicaPods stands in for the Deployment's pods: replica-a (the first process, through the
// test's environment) and replica-b (replicaOf) in ns, whose leader label the replicas move.
// They stay Pending (a node selector nothing has).
func replicaPods(t *testing.T, ns string) {
	t.Helper()
	for _, name := range []string{"replica-a", "replica-b"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"burstlet.io/leader": "true"}},
			Spec: corev1.PodSpec{NodeSelector: map[string]string{"e2e.burstlet.io/none": "none"},
				Containers: []corev1.Container{{Name: "burstlet", Image: "burstlet"}}}}
		if _, err := env.cluster.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("POD_NAME", "replica-a")
	t.Setenv("POD_NAMESPACE", ns)
}

// leaders lists the replica pods labelled as the leader.
func leaders(t *testing.T, ns string) []string {
	t.Helper()
	l, err := env.cluster.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "burstlet.io/leader=true"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Name)
	}
	return out
}

// startReplicas starts the leader (waited for) and a standby of one cci node.
func startReplicas(t *testing.T) (*cciDaemon, *daemon, string, string) {
	t.Helper()
	leaseNs := namespace(t, env.cluster)
	replicaPods(t, leaseNs)
	d := startCciDaemon(t, withConfig(leaderElectionConfig(leaseNs)))
	lease := "burstlet-" + d.node
	leader := leaseHolder(t, leaseNs, lease)
	if leader == "" {
		t.Fatal("the ready replica holds no lease")
	}
	standby := replicaOf(t, d.daemon)
	eventually(t, 30*time.Second, "the second replica standing by", func() error {
		// Ready (a rolling update must go on), but not the leader, and its pod not labelled.
		code, body := standby.readyz()
		if code != http.StatusOK || !strings.Contains(body, "standing by") {
			return fmt.Errorf("readyz %d %q", code, body)
		}
		if got := standby.metric("burstlet_leader"); got != "0" {
			return fmt.Errorf("burstlet_leader %q", got)
		}
		if got := leaders(t, leaseNs); len(got) != 1 || got[0] != "replica-a" {
			return fmt.Errorf("pods labelled leader: %v", got)
		}
		return nil
	})
	if got := d.metric("burstlet_leader"); got != "1" {
		t.Fatalf("leader's burstlet_leader is %q", got)
	}
	return d, standby, leaseNs, lease
}

// burstPods creates n pods bound to the node (as the scheduler would), sharing a ConfigMap;
// after `kickAt` of them, kick runs (once).
func burstPods(t *testing.T, d *daemon, ns string, n, kickAt int, kick func()) {
	t.Helper()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"k": "v"}}
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Four writers, as a controller-manager creating a ReplicaSet's pods would.
	var wg sync.WaitGroup
	var once sync.Once
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var mu sync.Mutex
	created := 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				spec := cciPodSpec(d)
				spec.NodeName = d.node
				spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
					ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}}}}}
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%03d", i)}, Spec: spec}
				if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				created++
				kicking := created == kickAt
				mu.Unlock()
				if kicking && kick != nil {
					once.Do(kick)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// allRunningOnce waits until every pod of ns is Running with its backend pod's IP, and checks that
// each has exactly one backend pod (by source UID) and no backend pod lacks a cluster pod.
func allRunningOnce(t *testing.T, ns, bns string, total int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d pods Running with their backend pod's IP", total), func() error {
		byUID := map[string]corev1.Pod{}
		for _, b := range backendPods(t, bns) {
			byUID[b.Annotations["burstlet.io/source-uid"]] = b
		}
		pods := podsOf(t, ns, "")
		if len(pods) != total {
			return fmt.Errorf("%d pods", len(pods))
		}
		running := 0
		for _, p := range pods {
			b, ok := byUID[string(p.UID)]
			if p.Status.Phase == corev1.PodRunning && ok && p.Status.PodIP != "" && p.Status.PodIP == b.Status.PodIP {
				running++
			}
		}
		if running != total {
			return fmt.Errorf("%d of %d Running with the backend's IP", running, total)
		}
		return nil
	})
	byUID := map[string]int{}
	for _, b := range backendPods(t, bns) {
		byUID[b.Annotations["burstlet.io/source-uid"]]++
	}
	for _, p := range podsOf(t, ns, "") {
		if n := byUID[string(p.UID)]; n != 1 {
			t.Errorf("%s has %d backend pods", p.Name, n)
		}
		delete(byUID, string(p.UID))
	}
	if len(byUID) != 0 {
		t.Errorf("backend pods without a cluster pod: %v", byUID)
	}
}

// The leader is SIGKILLed a third into a 500-pod burst: the standby takes the Lease once it went
// unrenewed for its duration, and every pod ends Running exactly once on the backend with its
// status written. The times go to docs/reliability.md.
func TestLeaderFailoverDuringABurst(t *testing.T) {
	const total = 500
	d, standby, leaseNs, lease := startReplicas(t)
	first := leaseHolder(t, leaseNs, lease)
	ns := namespace(t, env.cluster)
	var killed time.Time
	burstPods(t, d.daemon, ns, total, total/3, func() {
		// The standby wrote nothing so far: no backend pod, no status (duplicates would be absorbed
		// by creates idempotent by UID, so only its own counts show them).
		for _, m := range []string{"burstlet_provider_creates_total", "burstlet_pod_status_patches_total"} {
			if got := standby.metric(m); got != "0" {
				t.Errorf("the standby's %s is %q before the takeover", m, got)
			}
		}
		if err := d.stop(syscall.SIGKILL); err == nil {
			t.Error("SIGKILL should not exit cleanly")
		}
		killed = time.Now()
		t.Logf("leader killed with %d backend pods", len(backendPods(t, d.backendNamespace())))
	})
	var leased, ready time.Time
	eventually(t, 60*time.Second, "the standby holding the Lease and ready", func() error {
		if leased.IsZero() {
			if h := leaseHolder(t, leaseNs, lease); h != "" && h != first {
				leased = time.Now()
			} else {
				return fmt.Errorf("lease held by %q", h)
			}
		}
		if code, body := standby.readyz(); code != http.StatusOK || strings.Contains(body, "standing by") {
			return fmt.Errorf("readyz %d %q", code, body)
		}
		ready = time.Now()
		return nil
	})
	eventually(t, 10*time.Second, "the new leader's pod labelled", func() error {
		for _, name := range leaders(t, leaseNs) {
			if name == "replica-b" {
				return nil
			}
		}
		return fmt.Errorf("pods labelled leader: %v", leaders(t, leaseNs))
	})
	allRunningOnce(t, ns, d.backendNamespace(), total, 300*time.Second)
	done := time.Now()
	t.Logf("takeover: lease taken %.1fs after SIGKILL (lease duration 15s), replica ready after %.1fs, all %d pods Running after %.1fs",
		leased.Sub(killed).Seconds(), ready.Sub(killed).Seconds(), total, done.Sub(killed).Seconds())
	if leased.Sub(killed) > 15*time.Second+2*2*time.Second {
		t.Errorf("the lease was taken %v after the kill: more than its duration and a retry period", leased.Sub(killed))
	}
	// The node is the new leader's: its own lease renewed, Ready.
	eventually(t, 30*time.Second, "node Ready under the new leader", func() error {
		n, err := env.cluster.CoreV1().Nodes().Get(context.Background(), d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("not Ready")
	})
	if report := os.Getenv("BURSTLET_HA_REPORT"); report != "" {
		line := fmt.Sprintf("failover %d pods: lease taken %.1fs, ready %.1fs, all Running %.1fs after SIGKILL\n",
			total, leased.Sub(killed).Seconds(), ready.Sub(killed).Seconds(), done.Sub(killed).Seconds())
		f, err := os.OpenFile(report, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(line)
			f.Close()
		}
	}
}

// An upgrade as a Deployment with two replicas rolls it: the new process starts as a standby, the
// old one is stopped (SIGTERM: it releases the Lease), the new one takes over at once. None of the
// 200 burst pods is restarted, re-created or touched on the backend.
func TestUpgradeRestartsNoBackendPod(t *testing.T) {
	const total = 200
	leaseNs := namespace(t, env.cluster)
	replicaPods(t, leaseNs)
	d := startCciDaemon(t, withConfig(leaderElectionConfig(leaseNs)))
	lease := "burstlet-" + d.node
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	burstPods(t, d.daemon, ns, total, 0, nil)
	allRunningOnce(t, ns, bns, total, 300*time.Second)
	type seen struct{ uid, start string }
	snapshot := func() map[string]seen {
		out := map[string]seen{}
		for _, b := range backendPods(t, bns) {
			out[b.Name] = seen{string(b.UID), b.Status.StartTime.String()}
		}
		return out
	}
	before := snapshot()
	starts := map[string]string{}
	for _, p := range podsOf(t, ns, "") {
		starts[p.Name] = p.Status.StartTime.String()
	}
	// The new version: a standby beside the running leader (the rolling update's surge pod).
	next := replicaOf(t, d.daemon)
	eventually(t, 30*time.Second, "the new replica standing by", func() error {
		if code, body := next.readyz(); code != http.StatusOK || !strings.Contains(body, "standing by") {
			return fmt.Errorf("readyz %d %q", code, body)
		}
		return nil
	})
	old := leaseHolder(t, leaseNs, lease)
	stopped := time.Now()
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("the old replica did not stop cleanly: %v", err)
	}
	var leased time.Time
	eventually(t, 30*time.Second, "the new replica leading and ready", func() error {
		if leased.IsZero() {
			if h := leaseHolder(t, leaseNs, lease); h != "" && h != old {
				leased = time.Now()
			}
		}
		if code, body := next.readyz(); code != http.StatusOK || strings.Contains(body, "standing by") {
			return fmt.Errorf("readyz %d %q", code, body)
		}
		return nil
	})
	t.Logf("handover: lease taken %.1fs after SIGTERM of the old replica", leased.Sub(stopped).Seconds())
	// Released at SIGTERM: taken at the standby's next attempt (retryPeriod 2s), far below the
	// lease duration (15s) an unreleased Lease would cost.
	if leased.Sub(stopped) > 5*time.Second {
		t.Errorf("a released lease was taken only after %v", leased.Sub(stopped))
	}
	// The new replica settles (reconciles, resyncs) and changes nothing on the backend.
	consistently(t, 20*time.Second, "backend pods untouched", func() error {
		after := snapshot()
		if len(after) != len(before) {
			return fmt.Errorf("%d backend pods, were %d", len(after), len(before))
		}
		for name, b := range before {
			if a, ok := after[name]; !ok || a.uid != b.uid || a.start != b.start {
				return fmt.Errorf("backend pod %s changed: %+v -> %+v", name, b, a)
			}
		}
		return nil
	})
	if got := next.metric("burstlet_provider_creates_total"); got != "0" {
		t.Errorf("the new replica created %s pods on the backend", got)
	}
	for _, p := range podsOf(t, ns, "") {
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if p.Status.Phase != corev1.PodRunning || !ready || p.Status.StartTime.String() != starts[p.Name] {
			t.Errorf("%s: phase %s ready %v start %s (was %s)", p.Name, p.Status.Phase, ready,
				p.Status.StartTime, starts[p.Name])
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("%s/%s restarted %d times", p.Name, cs.Name, cs.RestartCount)
			}
		}
	}
}

// A leader whose Lease another replica took (here: written over by the test, as a replica that
// judged it expired would) stops working and exits 1, to be restarted as a standby.
func TestALeaderThatLosesItsLeaseExits(t *testing.T) {
	leaseNs := namespace(t, env.cluster)
	d := startCciDaemon(t, withConfig(leaderElectionConfig(leaseNs)))
	ctx := context.Background()
	lease, err := env.cluster.CoordinationV1().Leases(leaseNs).Get(ctx, "burstlet-"+d.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	intruder := "intruder"
	lease.Spec.HolderIdentity = &intruder
	if _, err := env.cluster.CoordinationV1().Leases(leaseNs).Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = d.waitExit(30 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("exit %v, want status 1", err)
	}
	t.Logf("exited %.1fs after losing the lease", time.Since(start).Seconds())
	if !strings.Contains(d.output(), "leadership lost") {
		t.Errorf("no \"leadership lost\" in the log")
	}
	if got := leaseHolder(t, leaseNs, "burstlet-"+d.node); got != intruder {
		t.Errorf("the lost leader wrote the Lease: holder %q", got)
	}
}
