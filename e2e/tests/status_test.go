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

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"burstlet/e2e/testbed"
)

// Pod status as a v1.36 kubelet writes it (its status manager and generateAPIPodStatus), one
// row per scenario, each naming the kubelet behaviour it mirrors. The rows share one burstlet
// with the cci provider and run in order; the last restarts it with another node IP.

type statusSuite struct {
	d   *cciDaemon
	ns  string
	bns string
}

type statusRow struct {
	name    string
	kubelet string // the kubelet behaviour the row mirrors
	run     func(t *testing.T, s *statusSuite)
}

func TestCciPodStatusAsTheKubeletWritesIt(t *testing.T) {
	s := &statusSuite{d: startCciDaemon(t), ns: namespace(t, env.cluster)}
	s.bns = s.d.backendNamespace()
	rows := []statusRow{
		{"pod running", "generateAPIPodStatus: the four kubelet conditions True without reason, " +
			"observedGeneration, resources/allocatedResources/volumeMounts per container", rowRunning},
		{"backend pod IP change", "status manager: podIPs replaced, never merged into two IPs", rowIPChange},
		{"container exit, restartPolicy Never", "getPhase: all stopped, one failed -> Failed; " +
			"ContainersReady/Ready False PodFailed", rowExitNever},
		{"container exit, restartPolicy OnFailure exit 0", "getPhase: all succeeded -> Succeeded, " +
			"PodCompleted", rowExitOnFailureZero},
		{"container exit, restartPolicy Always and OnFailure exit non-zero", "the container runs again: " +
			"Running, restartCount 1, the exit in lastState", rowExitRestarts},
		{"Job completion and failure", "the Job controller counts pods by the phase the kubelet wrote",
			rowJobs},
		{"eviction of a Job pod with podFailurePolicy", "TerminatePod: a deleted pod ends Failed before " +
			"it goes, so the Job ignores the disruption and replaces the pod", rowEvictedJobPod},
		{"StatefulSet pod replaced", "a force-deleted pod's containers still stop with their grace; " +
			"the new pod of that name waits in ContainerCreating", rowStatefulSetReplaced},
		{"backend cannot place the pod", "a pod whose sandbox is not there yet: Pending, " +
			"ContainerCreating, the reason as an event, no foreign condition", rowBackendCannotPlace},
		{"label and image update", "monotonic fields: startTime, phase, transition times stay",
			rowUpdate},
		{"drain", "kubectl drain waits for evicted pods to end and go", rowDrain},
		{"burstlet restarted with a new node IP", "hostIPs replaced; status keeps flowing (no 422)",
			rowNewNodeIP},
	}
	for _, row := range rows {
		row := row
		if !t.Run(row.name, func(t *testing.T) {
			t.Logf("kubelet behaviour: %s", row.kubelet)
			row.run(t, s)
		}) {
			t.Logf("row %q failed", row.name)
		}
	}
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

var kubeletConditions = []corev1.PodConditionType{corev1.PodReadyToStartContainers,
	corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady}

// wantCondition checks a condition's status, reason and (when not "") message.
func wantCondition(p *corev1.Pod, typ corev1.PodConditionType, status corev1.ConditionStatus,
	reason, message string) error {
	c := condition(p, typ)
	if c == nil {
		return fmt.Errorf("no %s condition", typ)
	}
	if c.Status != status || c.Reason != reason || (message != "" && c.Message != message) {
		return fmt.Errorf("%s: status %s reason %q message %q; want %s %q %q", typ, c.Status, c.Reason,
			c.Message, status, reason, message)
	}
	if c.ObservedGeneration != p.Generation {
		return fmt.Errorf("%s observedGeneration %d, pod generation %d", typ, c.ObservedGeneration,
			p.Generation)
	}
	return nil
}

func (s *statusSuite) pod(name string, annotations map[string]string,
	policy corev1.RestartPolicy) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations,
		Labels: map[string]string{"row": name}}, Spec: cciPodSpec(s.d.daemon)}
	if policy != "" {
		p.Spec.RestartPolicy = policy
	}
	return p
}

func rowRunning(t *testing.T, s *statusSuite) {
	p := s.pod("run", nil, "")
	p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox:1.36"}}
	p.Spec.Volumes = []corev1.Volume{{Name: "scratch",
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch",
		ReadOnly: true}}
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{
		corev1.ResourceMemory: resource.MustParse("1Gi")}
	createPod(t, s.ns, p)
	eventually(t, 60*time.Second, "run Running as a kubelet writes it", func() error {
		got, err := getPod(s.ns, "run")
		if err != nil {
			return err
		}
		if err := runningOn(got, s.d.node); err != nil {
			return err
		}
		st := got.Status
		if st.ObservedGeneration != got.Generation || got.Generation == 0 {
			return fmt.Errorf("observedGeneration %d, generation %d", st.ObservedGeneration, got.Generation)
		}
		if st.HostIP != s.d.nodeIP || len(st.HostIPs) != 1 || st.PodIP == "" || len(st.PodIPs) != 1 ||
			st.StartTime == nil {
			return fmt.Errorf("hostIP %q hostIPs %v podIP %q podIPs %v startTime %v", st.HostIP,
				st.HostIPs, st.PodIP, st.PodIPs, st.StartTime)
		}
		for _, typ := range kubeletConditions {
			if err := wantCondition(got, typ, corev1.ConditionTrue, "", ""); err != nil {
				return err
			}
		}
		if c := condition(got, corev1.PodScheduled); c == nil || c.Status != corev1.ConditionTrue ||
			c.Reason != "" {
			return fmt.Errorf("PodScheduled %+v (the cluster scheduler's, nothing of the backend's)", c)
		}
		if len(st.InitContainerStatuses) != 1 || st.InitContainerStatuses[0].State.Terminated == nil ||
			st.InitContainerStatuses[0].State.Terminated.ExitCode != 0 {
			return fmt.Errorf("init container statuses %+v", st.InitContainerStatuses)
		}
		if len(st.ContainerStatuses) != 1 {
			return fmt.Errorf("container statuses %+v", st.ContainerStatuses)
		}
		c := st.ContainerStatuses[0]
		if !c.Ready || c.State.Running == nil {
			return fmt.Errorf("container %+v", c)
		}
		want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("300m"),
			corev1.ResourceMemory: resource.MustParse("512Mi")}
		if !equalResources(c.AllocatedResources, want) || c.Resources == nil ||
			!equalResources(c.Resources.Requests, want) ||
			!equalResources(c.Resources.Limits, corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}) {
			return fmt.Errorf("allocatedResources %v resources %+v (want the spec's)", c.AllocatedResources,
				c.Resources)
		}
		found := false
		for _, m := range c.VolumeMounts {
			if m.Name == "scratch" && m.MountPath == "/scratch" && m.ReadOnly && m.RecursiveReadOnly != nil &&
				*m.RecursiveReadOnly == corev1.RecursiveReadOnlyDisabled {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("volumeMounts %+v", c.VolumeMounts)
		}
		return nil
	})
	// Written once, in the API server's own form: nothing is patched again while nothing changes.
	before, err := getPod(s.ns, "run")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	after, err := getPod(s.ns, "run")
	if err != nil {
		t.Fatal(err)
	}
	if before.ResourceVersion != after.ResourceVersion {
		t.Errorf("the status was written again with nothing new: %+v -> %+v", before.Status, after.Status)
	}
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if got, ok := a[k]; !ok || got.Cmp(v) != 0 {
			return false
		}
	}
	return true
}

// backendPodOf waits for the cluster pod's backend pod.
func (s *statusSuite) backendPodOf(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	var b *corev1.Pod
	eventually(t, 30*time.Second, "backend pod of "+name, func() error {
		p, err := getPod(s.ns, name)
		if err != nil {
			return err
		}
		if b = backendPodFor(t, s.bns, p); b == nil {
			return fmt.Errorf("no backend pod")
		}
		return nil
	})
	return b
}

func rowIPChange(t *testing.T, s *statusSuite) {
	ctx := context.Background()
	b := s.backendPodOf(t, "run")
	const newIP = "10.99.0.7"
	b.Status.PodIP = newIP
	b.Status.PodIPs = []corev1.PodIP{{IP: newIP}}
	if _, err := env.backend.CoreV1().Pods(s.bns).UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the new pod IP, alone", func() error {
		p, err := getPod(s.ns, "run")
		if err != nil {
			return err
		}
		if p.Status.PodIP != newIP || len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != newIP {
			return fmt.Errorf("podIP %q podIPs %v", p.Status.PodIP, p.Status.PodIPs)
		}
		return nil
	})
}

// exits creates a pod whose container exits with code under the restart policy and waits until
// check passes.
func (s *statusSuite) exits(t *testing.T, name, code string, policy corev1.RestartPolicy,
	check func(p *corev1.Pod) error) {
	t.Helper()
	createPod(t, s.ns, s.pod(name, map[string]string{testbed.ExitCodeAnnotation: code}, policy))
	eventually(t, 60*time.Second, name+" after its container exited "+code, func() error {
		p, err := getPod(s.ns, name)
		if err != nil {
			return err
		}
		return check(p)
	})
}

func terminatedWith(p *corev1.Pod, code int32) error {
	cs := p.Status.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != code ||
		cs[0].Ready {
		return fmt.Errorf("container statuses %+v", cs)
	}
	return nil
}

func rowExitNever(t *testing.T, s *statusSuite) {
	s.exits(t, "exit-never", "3", corev1.RestartPolicyNever, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		if err := terminatedWith(p, 3); err != nil {
			return err
		}
		for _, typ := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
			if err := wantCondition(p, typ, corev1.ConditionFalse, "PodFailed", ""); err != nil {
				return err
			}
		}
		return wantCondition(p, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", "")
	})
}

func rowExitOnFailureZero(t *testing.T, s *statusSuite) {
	s.exits(t, "exit-zero", "0", corev1.RestartPolicyOnFailure, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		if err := terminatedWith(p, 0); err != nil {
			return err
		}
		if err := wantCondition(p, corev1.PodInitialized, corev1.ConditionTrue, "PodCompleted", ""); err != nil {
			return err
		}
		return wantCondition(p, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", "")
	})
}

func rowExitRestarts(t *testing.T, s *statusSuite) {
	for _, c := range []struct {
		name   string
		code   int32
		policy corev1.RestartPolicy
	}{{"exit-always", 2, corev1.RestartPolicyAlways}, {"exit-onfailure", 4, corev1.RestartPolicyOnFailure}} {
		c := c
		s.exits(t, c.name, fmt.Sprint(c.code), c.policy, func(p *corev1.Pod) error {
			if err := runningOn(p, s.d.node); err != nil {
				return err
			}
			cs := p.Status.ContainerStatuses
			if len(cs) != 1 || cs[0].RestartCount != 1 || cs[0].State.Running == nil || !cs[0].Ready ||
				cs[0].LastTerminationState.Terminated == nil ||
				cs[0].LastTerminationState.Terminated.ExitCode != c.code {
				return fmt.Errorf("container statuses %+v", cs)
			}
			return wantCondition(p, corev1.PodReady, corev1.ConditionTrue, "", "")
		})
	}
}

func (s *statusSuite) job(name, code string, mutate func(*batchv1.Job)) *batchv1.Job {
	spec := cciPodSpec(s.d.daemon)
	spec.RestartPolicy = corev1.RestartPolicyNever
	annotations := map[string]string{}
	if code != "" {
		annotations[testbed.ExitCodeAnnotation] = code
	}
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{BackoffLimit: int32p(0),
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{
				Labels: map[string]string{"job": name}, Annotations: annotations}, Spec: spec}}}
	if mutate != nil {
		mutate(j)
	}
	return j
}

func jobCondition(j *batchv1.Job, typ batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func rowJobs(t *testing.T, s *statusSuite) {
	ctx := context.Background()
	for _, j := range []*batchv1.Job{s.job("job-ok", "0", nil), s.job("job-bad", "1", nil)} {
		if _, err := env.cluster.BatchV1().Jobs(s.ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 90*time.Second, "job-ok Complete and job-bad Failed", func() error {
		ok, err := env.cluster.BatchV1().Jobs(s.ns).Get(ctx, "job-ok", metav1.GetOptions{})
		if err != nil {
			return err
		}
		bad, err := env.cluster.BatchV1().Jobs(s.ns).Get(ctx, "job-bad", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !jobCondition(ok, batchv1.JobComplete) || ok.Status.Succeeded != 1 {
			return fmt.Errorf("job-ok status %+v", ok.Status)
		}
		if !jobCondition(bad, batchv1.JobFailed) || bad.Status.Failed != 1 {
			return fmt.Errorf("job-bad status %+v", bad.Status)
		}
		return nil
	})
}

func rowEvictedJobPod(t *testing.T, s *statusSuite) {
	ctx := context.Background()
	j := s.job("job-evicted", "", func(j *batchv1.Job) {
		j.Spec.Template.Annotations[testbed.DeleteDelayAnnotation] = "3s"
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action: batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{
				Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}}}
	})
	if _, err := env.cluster.BatchV1().Jobs(s.ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var first corev1.Pod
	eventually(t, 60*time.Second, "the Job's pod Running", func() error {
		pods := podsOf(t, s.ns, "job=job-evicted")
		if len(pods) != 1 {
			return fmt.Errorf("%d pods", len(pods))
		}
		first = pods[0]
		return runningOn(&first, s.d.node)
	})
	if err := env.cluster.PolicyV1().Evictions(s.ns).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: first.Name, Namespace: s.ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "the evicted pod gone and replaced, the disruption ignored", func() error {
		if p, err := getPod(s.ns, first.Name); err == nil {
			return fmt.Errorf("%s still there: phase %s, deleting %v, finalizers %v", p.Name, p.Status.Phase,
				p.DeletionTimestamp != nil, p.Finalizers)
		}
		pods := podsOf(t, s.ns, "job=job-evicted")
		if len(pods) != 1 || pods[0].UID == first.UID {
			return fmt.Errorf("%d pods, no replacement", len(pods))
		}
		job, err := env.cluster.BatchV1().Jobs(s.ns).Get(ctx, "job-evicted", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if job.Status.Failed != 0 || jobCondition(job, batchv1.JobFailed) {
			return fmt.Errorf("the Job counted the eviction as a failure: %+v", job.Status)
		}
		return nil
	})
}

func rowStatefulSetReplaced(t *testing.T, s *statusSuite) {
	ctx := context.Background()
	spec := cciPodSpec(s.d.daemon)
	spec.TerminationGracePeriodSeconds = int64p(30)
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: int32p(1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"},
				Annotations: map[string]string{testbed.DeleteDelayAnnotation: "15s"}}, Spec: spec}}}
	if _, err := env.cluster.AppsV1().StatefulSets(s.ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, s.ns, "db-0", s.d.node)
	old, err := getPod(s.ns, "db-0")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.cluster.CoreV1().Pods(s.ns).Delete(ctx, "db-0",
		metav1.DeleteOptions{GracePeriodSeconds: int64p(0)}); err != nil {
		t.Fatal(err)
	}
	lastSeen := "nothing"
	eventually(t, 20*time.Second, "the old backend pod stopping with its own grace", func() error {
		b := backendPodFor(t, s.bns, old)
		if b != nil {
			lastSeen = fmt.Sprintf("deletion %v grace %v annotations %v", b.DeletionTimestamp, b.DeletionGracePeriodSeconds, b.Annotations)
			if b.DeletionGracePeriodSeconds != nil {
				lastSeen += fmt.Sprintf(" (%d)", *b.DeletionGracePeriodSeconds)
			}
		}
		if b == nil {
			var seen []string
			for _, x := range backendPods(t, s.bns) {
				seen = append(seen, fmt.Sprintf("%s(uid %s, source %s, deleting %v)", x.Name, x.UID,
					x.Annotations["burstlet.io/source-uid"], x.DeletionTimestamp != nil))
			}
			return fmt.Errorf("the old backend pod is gone already (its grace was cut; last seen: %s); "+
				"backend pods: %v", lastSeen, seen)
		}
		if b.DeletionTimestamp == nil || b.DeletionGracePeriodSeconds == nil || *b.DeletionGracePeriodSeconds != 30 {
			return fmt.Errorf("old backend pod deletion %v grace %v", b.DeletionTimestamp, b.DeletionGracePeriodSeconds)
		}
		return nil
	})
	sawWaiting := false
	eventually(t, 60*time.Second, "the new db-0 waits quietly, then runs", func() error {
		p, err := getPod(s.ns, "db-0")
		if err != nil {
			return err
		}
		if p.UID == old.UID {
			return fmt.Errorf("not replaced yet")
		}
		if p.Status.Reason == "ProviderFailed" {
			t.Errorf("the replacement shows ProviderFailed: %s", p.Status.Message)
		}
		if len(p.Status.ContainerStatuses) == 1 {
			if w := p.Status.ContainerStatuses[0].State.Waiting; w != nil && w.Reason == "ContainerCreating" &&
				strings.Contains(w.Message, "previous pod of this name") && p.Status.Phase == corev1.PodPending {
				sawWaiting = true
			}
		}
		return runningOn(p, s.d.node)
	})
	if !sawWaiting {
		t.Errorf("the replacement was never seen waiting in ContainerCreating for its predecessor")
	}
	p, _ := getPod(s.ns, "db-0")
	for _, e := range eventsFor(t, s.ns, "db-0") {
		if e.InvolvedObject.UID == p.UID && e.Type == corev1.EventTypeWarning {
			t.Errorf("warning event on the replacement: %s %s", e.Reason, e.Message)
		}
	}
}

func rowBackendCannotPlace(t *testing.T, s *statusSuite) {
	ctx := context.Background()
	nodes, err := env.backend.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setUnschedulable := func(on bool) {
		for _, n := range nodes.Items {
			patch := fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, on)
			if _, err := env.backend.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType,
				[]byte(patch), metav1.PatchOptions{}); err != nil {
				t.Errorf("backend node %s unschedulable=%v: %v", n.Name, on, err)
			}
		}
	}
	setUnschedulable(true)
	t.Cleanup(func() { setUnschedulable(false) })
	createPod(t, s.ns, s.pod("unplaced", nil, ""))
	eventually(t, 60*time.Second, "unplaced Pending in ContainerCreating with a BackendPending event", func() error {
		p, err := getPod(s.ns, "unplaced")
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodPending {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "ContainerCreating" {
			return fmt.Errorf("container statuses %+v", cs)
		}
		if c := condition(p, corev1.PodScheduled); c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("PodScheduled %+v: the pod is bound to the virtual node", c)
		}
		if err := wantCondition(p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady",
			"containers with unready status: [app]"); err != nil {
			return err
		}
		return hasEvent(t, s.ns, "unplaced", corev1.EventTypeWarning, "BackendPending", "has not placed the pod yet")
	})
	setUnschedulable(false)
	waitRunning(t, s.ns, "unplaced", s.d.node)
}

func rowUpdate(t *testing.T, s *statusSuite) {
	ctx := context.Background()
	before, err := getPod(s.ns, "run")
	if err != nil {
		t.Fatal(err)
	}
	patch := `{"metadata":{"labels":{"tier":"gold"}},"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}`
	if _, err := env.cluster.CoreV1().Pods(s.ns).Patch(ctx, "run", types.StrategicMergePatchType,
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the update on the backend pod", func() error {
		b := backendPodFor(t, s.bns, before)
		if b == nil || b.Labels["tier"] != "gold" || b.Spec.Containers[0].Image != "nginx:1.28" {
			return fmt.Errorf("backend pod %v", b)
		}
		return nil
	})
	eventually(t, 30*time.Second, "the status after the update", func() error {
		after, err := getPod(s.ns, "run")
		if err != nil {
			return err
		}
		if after.Status.ObservedGeneration != after.Generation || after.Generation == before.Generation {
			return fmt.Errorf("observedGeneration %d generation %d (before %d)", after.Status.ObservedGeneration,
				after.Generation, before.Generation)
		}
		if after.Status.Phase != corev1.PodRunning || !after.Status.StartTime.Equal(before.Status.StartTime) {
			return fmt.Errorf("phase %s startTime %v (was %v)", after.Status.Phase, after.Status.StartTime,
				before.Status.StartTime)
		}
		for _, typ := range append(kubeletConditions, corev1.PodScheduled) {
			b, a := condition(before, typ), condition(after, typ)
			if a == nil || b == nil || !a.LastTransitionTime.Equal(&b.LastTransitionTime) || a.Status != b.Status {
				return fmt.Errorf("%s moved: %+v -> %+v", typ, b, a)
			}
		}
		if after.Status.ContainerStatuses[0].RestartCount != before.Status.ContainerStatuses[0].RestartCount {
			return fmt.Errorf("restartCount moved")
		}
		return nil
	})
}

func rowDrain(t *testing.T, s *statusSuite) {
	createPod(t, s.ns, s.pod("drained", map[string]string{testbed.DeleteDelayAnnotation: "3s"}, ""))
	waitRunning(t, s.ns, "drained", s.d.node)
	kubectl := filepath.Join(os.Getenv("BURSTLET_BIN_DIR"), "kubectl")
	out, err := exec.Command(kubectl, "--kubeconfig", env.tb.Cluster.AdminKubeconfig, "drain", s.d.node,
		"--pod-selector", "row=drained", "--force", "--ignore-daemonsets", "--delete-emptydir-data",
		"--timeout", "90s").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl drain: %v\n%s", err, out)
	}
	if _, err := getPod(s.ns, "drained"); err == nil {
		t.Errorf("kubectl drain finished but the pod is still there")
	}
	if out, err := exec.Command(kubectl, "--kubeconfig", env.tb.Cluster.AdminKubeconfig, "uncordon",
		s.d.node).CombinedOutput(); err != nil {
		t.Fatalf("kubectl uncordon: %v\n%s", err, out)
	}
}

func rowNewNodeIP(t *testing.T, s *statusSuite) {
	ctx := context.Background()
	createPod(t, s.ns, s.pod("flow", nil, corev1.RestartPolicyNever))
	waitRunning(t, s.ns, "flow", s.d.node)
	if err := s.d.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, a := range s.d.args {
		if a == "--node-ip" {
			s.d.args[i+1] = "127.0.0.2"
		}
	}
	s.d.start()
	s.d.waitReady(60 * time.Second)
	eventually(t, 30*time.Second, "the new host IP, alone", func() error {
		p, err := getPod(s.ns, "flow")
		if err != nil {
			return err
		}
		if p.Status.HostIP != "127.0.0.2" || len(p.Status.HostIPs) != 1 || p.Status.HostIPs[0].IP != "127.0.0.2" {
			return fmt.Errorf("hostIP %q hostIPs %v", p.Status.HostIP, p.Status.HostIPs)
		}
		return nil
	})
	// Status keeps flowing: the container exits, the pod ends Failed with its code.
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"5"}}}`, testbed.ExitCodeAnnotation)
	if _, err := env.cluster.CoreV1().Pods(s.ns).Patch(ctx, "flow", types.MergePatchType, []byte(patch),
		metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "flow Failed with exit code 5", func() error {
		p, err := getPod(s.ns, "flow")
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return terminatedWith(p, 5)
	})
	logs, err := os.ReadFile(s.d.logs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logs), "refused the pod's status") {
		t.Errorf("the API server refused a status patch:\n%s", logs)
	}
}
