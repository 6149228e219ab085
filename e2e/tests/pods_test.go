package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// podSpecFor targets the daemon's node the way a user does: node selector and toleration.
func podSpecFor(d *daemon) corev1.PodSpec {
	return corev1.PodSpec{
		NodeSelector: map[string]string{"kubernetes.io/hostname": d.node},
		Tolerations: []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoSchedule}},
		Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27",
			Env: []corev1.EnvVar{{Name: "MODE", Value: "e2e"}}}},
	}
}

func runningOn(p *corev1.Pod, node string) error {
	if p.Spec.NodeName != node {
		return fmt.Errorf("%s on node %q", p.Name, p.Spec.NodeName)
	}
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("%s phase %s (%s)", p.Name, p.Status.Phase, p.Status.Reason)
	}
	return nil
}

func podsOf(t *testing.T, ns, selector string) []corev1.Pod {
	t.Helper()
	list, err := env.cluster.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// A Deployment on the virtual node: its pods run with correct status; graceful and forced
// deletions finish, and nothing stays on the provider.
func TestPodsRunOnVirtualNodeAndDeletionsFinish(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fake.jsonl")
	d := startDaemon(t, "--fake-state-file", state)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	replicas := int32(3)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpecFor(d)}},
	}
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "3 pods Running on the virtual node", func() error {
		pods := podsOf(t, ns, "app=web")
		if len(pods) != 3 {
			return fmt.Errorf("%d pods", len(pods))
		}
		for i := range pods {
			if err := runningOn(&pods[i], d.node); err != nil {
				return err
			}
		}
		return nil
	})
	for _, p := range podsOf(t, ns, "app=web") {
		st := p.Status
		if !strings.HasPrefix(st.PodIP, "10.246.") || len(st.PodIPs) != 1 || st.HostIP != d.nodeIP ||
			st.StartTime == nil {
			t.Errorf("%s: podIP %q podIPs %v hostIP %q startTime %v", p.Name, st.PodIP, st.PodIPs, st.HostIP,
				st.StartTime)
		}
		if len(st.ContainerStatuses) != 1 || !st.ContainerStatuses[0].Ready ||
			st.ContainerStatuses[0].State.Running == nil || st.ContainerStatuses[0].Image != "nginx:1.27" {
			t.Errorf("%s: container statuses %+v", p.Name, st.ContainerStatuses)
		}
		ready := false
		for _, c := range st.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			t.Errorf("%s: not Ready: %+v", p.Name, st.Conditions)
		}
	}
	live := journalPods(t, state)
	if len(live) != 3 {
		t.Errorf("provider has %d pods, want 3: %v", len(live), live)
	}

	// Graceful delete: burstlet deletes on the provider, then removes the object.
	pods := podsOf(t, ns, "app=web")
	victim, forced := pods[0], pods[1]
	if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	grace := int64(0)
	if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, forced.Name,
		metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "deleted pods gone from the API", func() error {
		for _, name := range []string{victim.Name, forced.Name} {
			if _, err := env.cluster.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); !isNotFound(err) {
				return fmt.Errorf("%s still there (%v)", name, err)
			}
		}
		return nil
	})
	eventually(t, 30*time.Second, "provider in step with the cluster", func() error {
		live := journalPods(t, state)
		for _, uid := range []string{string(victim.UID), string(forced.UID)} {
			for k, v := range live {
				if v == uid {
					return fmt.Errorf("deleted pod %s still on the provider", k)
				}
			}
		}
		if len(live) != 3 {
			return fmt.Errorf("provider has %d pods, want 3 (replacements)", len(live))
		}
		return nil
	})

	// Deleting the workload leaves nothing behind.
	if err := env.cluster.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "provider empty", func() error {
		if live := journalPods(t, state); len(live) != 0 {
			return fmt.Errorf("provider still has %v", live)
		}
		return nil
	})
}

func eventsFor(t *testing.T, ns, pod string) []corev1.Event {
	t.Helper()
	list, err := env.cluster.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod).String()})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// Provider failures are retried and shown as Warning events and a status reason; a pod the
// provider rejects is failed with the reason, once, and not retried.
func TestProviderFailuresSurfaceAsEvents(t *testing.T) {
	d := startDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	mk := func(name string, ann map[string]string) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Spec: podSpecFor(d)}
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("flaky", map[string]string{"fake.burstlet.io/fail-creates": "2"})
	mk("rejected", map[string]string{"fake.burstlet.io/reject": "this pod asks for a GPU"})

	eventually(t, 60*time.Second, "flaky pod Running after retries", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "flaky", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := runningOn(p, d.node); err != nil {
			return err
		}
		if p.Status.Reason != "" {
			return fmt.Errorf("status reason %q not cleared", p.Status.Reason)
		}
		return nil
	})
	eventually(t, 30*time.Second, "ProviderFailed event on the flaky pod", func() error {
		for _, e := range eventsFor(t, ns, "flaky") {
			if e.Type == corev1.EventTypeWarning && e.Reason == "ProviderFailed" &&
				strings.Contains(e.Message, "injected create failure") {
				return nil
			}
		}
		return fmt.Errorf("no ProviderFailed event yet")
	})
	eventually(t, 30*time.Second, "rejected pod Failed with the reason", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "rejected", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Rejected" ||
			!strings.Contains(p.Status.Message, "this pod asks for a GPU") {
			return fmt.Errorf("phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // a retry loop would add events meanwhile
	var rejections []corev1.Event
	for _, e := range eventsFor(t, ns, "rejected") {
		if e.Reason == "Rejected" {
			rejections = append(rejections, e)
		}
	}
	if len(rejections) != 1 || rejections[0].Count > 1 || rejections[0].Type != corev1.EventTypeWarning {
		t.Errorf("rejection events %+v, want exactly one", rejections)
	}
}

// burstlet killed with SIGKILL in the middle of 200 creations and restarted: every pod ends
// Running, each exactly once on the provider, and nothing else is there.
func TestKillDuringCreationsLosesAndDuplicatesNothing(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fake.jsonl")
	d := startDaemon(t, "--fake-state-file", state)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	const total = 200
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < total; i += 10 {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%03d", i)}, Spec: podSpecFor(d)}
				p.Spec.NodeName = d.node // bound directly, as the scheduler would
				if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	// Kill it while creations are under way.
	eventually(t, 30*time.Second, "some pods on the provider", func() error {
		if n := len(journalPods(t, state)); n < 20 {
			return fmt.Errorf("%d on the provider", n)
		}
		return nil
	})
	if err := d.stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL should not exit cleanly")
	}
	killedAt := len(journalPods(t, state))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("killed with %d of %d pods on the provider", killedAt, total)
	d.start()
	d.waitReady(60 * time.Second)
	eventually(t, 120*time.Second, "all pods Running", func() error {
		running := 0
		for _, p := range podsOf(t, ns, "") {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running != total {
			return fmt.Errorf("%d of %d Running", running, total)
		}
		return nil
	})
	want := map[string]string{}
	for _, p := range podsOf(t, ns, "") {
		want[ns+"/"+p.Name] = string(p.UID)
	}
	live := journalPods(t, state)
	if len(live) != total {
		t.Errorf("provider has %d pods, want %d", len(live), total)
	}
	for k, uid := range want {
		if live[k] != uid {
			t.Errorf("%s: provider has uid %q, cluster %q", k, live[k], uid)
		}
	}
}

// Environments are resolved like a kubelet resolves them; a missing mandatory ConfigMap keeps
// the pod waiting with CreateContainerConfigError until it appears.
func TestEnvironmentFromConfigMapsAndWaitingForThem(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fake.jsonl")
	d := startDaemon(t, "--fake-state-file", state)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	spec := podSpecFor(d)
	spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "late-config"}}}}
	spec.Containers[0].Env = append(spec.Containers[0].Env,
		corev1.EnvVar{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: "metadata.namespace"}}},
		corev1.EnvVar{Name: "GREETING", Value: "$(WORD) from $(NS)"})
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "needs-config"}, Spec: spec}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitsForConfig(t, ns, "needs-config", `configmap "late-config" not found`)
	if n := len(journalPods(t, state)); n != 0 {
		t.Fatalf("pod created on the provider without its ConfigMap (%d pods)", n)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late-config"}, Data: map[string]string{"WORD": "hello"}}
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "pod Running once the ConfigMap exists", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "needs-config", metav1.GetOptions{})
		if err != nil {
			return err
		}
		return runningOn(p, d.node)
	})
	// What the backend received: plain values, expanded in order.
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{"name":"WORD","value":"hello"}`, `{"name":"NS","value":"` + ns + `"}`,
		`{"name":"GREETING","value":"hello from ` + ns + `"}`, `{"name":"MODE","value":"e2e"}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("backend pod lacks %s", want)
		}
	}
	if strings.Contains(string(data), "configMapRef") {
		t.Error("backend pod still refers to the ConfigMap")
	}
	found := false
	for _, e := range eventsFor(t, ns, "needs-config") {
		if e.Type == corev1.EventTypeWarning && e.Reason == "Failed" && strings.Contains(e.Message, "late-config") {
			found = true
		}
	}
	if !found {
		t.Error("no Warning Failed event naming the ConfigMap")
	}
}

func metricValue(t *testing.T, d *daemon, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, name+" "), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// Pods that finish end Succeeded or Failed with their exit codes, and a restarted burstlet
// (whose in-memory provider forgot them) does not run them again.
func TestFinishedPodsAreNotRunAgain(t *testing.T) {
	d := startDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	for name, code := range map[string]string{"job-ok": "0", "job-bad": "3"} {
		spec := podSpecFor(d)
		spec.RestartPolicy = corev1.RestartPolicyNever
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			"fake.burstlet.io/exit-after-ms": "300", "fake.burstlet.io/exit-code": code}}, Spec: spec}
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]corev1.PodPhase{"job-ok": corev1.PodSucceeded, "job-bad": corev1.PodFailed}
	check := func() error {
		for name, phase := range want {
			p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != phase {
				return fmt.Errorf("%s phase %s, want %s", name, p.Status.Phase, phase)
			}
			cs := p.Status.ContainerStatuses
			if len(cs) != 1 || cs[0].State.Terminated == nil {
				return fmt.Errorf("%s container statuses %+v", name, cs)
			}
			if wantCode := map[string]int32{"job-ok": 0, "job-bad": 3}[name]; cs[0].State.Terminated.ExitCode != wantCode {
				return fmt.Errorf("%s exit code %d", name, cs[0].State.Terminated.ExitCode)
			}
		}
		return nil
	}
	eventually(t, 30*time.Second, "jobs finished", check)
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.waitReady(60 * time.Second)
	time.Sleep(2 * time.Second)
	if err := check(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if n := metricValue(t, d, "burstlet_provider_creates_total"); n != 0 {
		t.Errorf("restarted burstlet created %v pods on the provider, want 0", n)
	}
}

// waitsForConfig waits until pod's only container waits with CreateContainerConfigError and a
// message containing `says`, as a kubelet shows a missing ConfigMap or Secret.
func waitsForConfig(t *testing.T, ns, pod, says string) {
	t.Helper()
	eventually(t, 30*time.Second, pod+" waiting with CreateContainerConfigError", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(context.Background(), pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "CreateContainerConfigError" ||
			!strings.Contains(cs[0].State.Waiting.Message, says) {
			return fmt.Errorf("container statuses %+v", cs)
		}
		return nil
	})
}
