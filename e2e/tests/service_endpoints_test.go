package tests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"sigs.k8s.io/yaml"

	"burstlet/e2e/testbed"
)

// Burst pods are ordinary members of the cluster's Services. The cluster plane's own
// kube-controller-manager (its EndpointSlice controller, v1.36) builds the slices from the pod
// objects; burstlet only writes the burst pods' status (the backend pod's IP, Ready as the
// backend's containers are). So a Service over a Deployment spread across the kwok workers and
// the virtual node lists every pod, follows scale up and down, follows a burst pod's readiness
// on the backend, and shows a burst pod being deleted as terminating before it drops out.
//
// It uses the CCI-path daemon (startCciDaemon: provider cci through the testbed's CCI gateway):
// its pods run on the backend plane's kwok fleet, so they have real, distinct backend IPs
// (10.245.0.0/16) that can be compared with the backend pod's, and a readiness flip is done where
// it happens in production, on the backend pod.
func TestBurstPodsInClusterServiceEndpoints(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }

	// The default testbed has 2 kwok workers. Required node affinity keeps the pods on them and
	// this test's virtual node (not on virtual nodes other tests may have left), and with the
	// default nodeAffinityPolicy (Honor) the spread counts only those 3 nodes: maxSkew 1 on
	// kubernetes.io/hostname, DoNotSchedule, puts 3 replicas one per node and 6 two per node,
	// whatever the virtual node's burst-preference PreferNoSchedule taint does to the scores. The
	// toleration is the one for the virtual node's NoSchedule taint. None of the newer
	// topologySpreadConstraints fields (minDomains, nodeAffinityPolicy, ...) is set: scheduling
	// fields stay in the cluster and are not sent to the backend, but the plain ones suffice.
	workers := env.tb.Cluster.NodeNames
	if len(workers) != 2 {
		t.Fatalf("the test wants the default testbed's 2 kwok workers, the cluster has %v", workers)
	}
	node, err := env.cluster.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("virtual node %s: labels %v taints %v", d.node, node.Labels, node.Spec.Taints)
	hosts := append(append([]string{}, workers...), d.node)

	labels := map[string]string{"app": "web"}
	spec := corev1.PodSpec{
		Tolerations: []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoSchedule}},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname,
					Operator: corev1.NodeSelectorOpIn, Values: hosts}}}}}}},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelHostname,
			WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}},
		Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			// CCI runs only pods with a container that asks for CPU.
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("300m"), corev1.ResourceMemory: resource.MustParse("512Mi")}}}},
	}
	// Every pod, the kwok workers' and the backend's, takes 8 s to stop once deleted (kwok's
	// pod-delete-slow stage, kwok_stages.go; burstlet copies the annotation to the backend pod),
	// so a deleted burst pod is seen terminating: burstlet keeps the cluster pod until its backend
	// pod is gone (TestCciDeletionWaitsForTheBackendPod).
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: int32p(3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels,
				Annotations: map[string]string{testbed.DeleteDelayAnnotation: "8s"}}, Spec: spec}}}
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	if svc, err = env.cluster.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("Service web has cluster IP %q", svc.Spec.ClusterIP)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpServiceState(t, ns, bns)
		}
	})

	e := &svcEndpoints{t: t, ns: ns, bns: bns, svc: "web", node: d.node}

	// Three replicas, one per node: the slices list all three, the burst one with the backend
	// pod's IP, a targetRef to the cluster pod and the virtual node's name.
	e.match(3, 1)
	step("3 replicas (1 burst) in the Service's EndpointSlices")

	// Readiness on the backend. kwok's pod-ready stage only handles Pending pods and no other
	// stage of the backend's kwok matches a Running pod without the exit-code annotation, so a
	// status written on the backend pod stays as written: it is written as a kubelet whose
	// readiness probe fails writes it (the container not ready, ContainersReady and Ready False).
	// burstlet derives the cluster pod's conditions from the backend's container statuses as a
	// kubelet does from its probes, so the cluster pod goes not Ready and the EndpointSlice
	// controller keeps its endpoint, not ready and not serving (it is not terminating).
	burst := e.burstPods()[0]
	backend := backendPodFor(t, bns, &burst)
	e.setBackendReady(backend.Name, false)
	eventually(t, 60*time.Second, burst.Name+" not Ready in the cluster, its endpoint not ready", func() error {
		p, err := getPod(ns, burst.Name)
		if err != nil {
			return err
		}
		if p.UID != burst.UID || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod %s uid %s phase %s", p.Name, p.UID, p.Status.Phase)
		}
		if c := condition(p, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse ||
			c.Reason != "ContainersNotReady" {
			return fmt.Errorf("Ready %+v", c)
		}
		if c := condition(p, corev1.ContainersReady); c == nil || c.Status != corev1.ConditionFalse {
			return fmt.Errorf("ContainersReady %+v", c)
		}
		eps, err := e.endpoints()
		if err != nil {
			return err
		}
		if len(eps) != 3 {
			return fmt.Errorf("%d endpoints, want 3 (a not ready pod stays listed)", len(eps))
		}
		ep, ok := eps[burst.UID]
		if !ok {
			return fmt.Errorf("no endpoint for %s", burst.Name)
		}
		if err := wantEndpoint(ep, p, false, false, false); err != nil {
			return err
		}
		for uid, other := range eps {
			if uid != burst.UID && !isSet(other.Conditions.Ready) {
				return fmt.Errorf("endpoint of %s not ready", other.TargetRef.Name)
			}
		}
		return nil
	})
	step("backend pod not ready: cluster pod Ready False, endpoint listed with ready=false")
	e.setBackendReady(backend.Name, true)
	eventually(t, 60*time.Second, burst.Name+" Ready again, its endpoint ready", func() error {
		p, err := getPod(ns, burst.Name)
		if err != nil {
			return err
		}
		if c := condition(p, corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		eps, err := e.endpoints()
		if err != nil {
			return err
		}
		ep, ok := eps[burst.UID]
		if !ok {
			return fmt.Errorf("no endpoint for %s", burst.Name)
		}
		return wantEndpoint(ep, p, true, true, false)
	})
	step("backend pod ready again: endpoint ready=true")

	// Scale up: six replicas, two per node, all listed.
	e.scale(6)
	e.match(6, 2)
	step("scaled to 6 (2 burst): all in the slices")

	// Deleting a burst pod with a grace period. The v1.36 EndpointSlice controller
	// (k8s.io/endpointslice reconciler.go) keeps pods with a deletionTimestamp
	// (ShouldPodBeInEndpoints(pod, includeTerminating=true)) and drops only terminal pods and
	// pods without an IP; podToEndpoint writes terminating=true, ready=false (ready is never true
	// for a terminating pod without publishNotReadyAddresses) and serving = the pod's Ready
	// condition. So the endpoint stays, terminating and not ready, while burstlet waits for the
	// backend pod to stop; once the pod is terminal or gone the endpoint goes.
	victim := e.burstPods()[0]
	victimBackend := backendPodFor(t, bns, &victim)
	stopRecording := e.record(victim)
	if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{
		GracePeriodSeconds: int64p(30), Preconditions: &metav1.Preconditions{UID: &victim.UID}}); err != nil {
		t.Fatal(err)
	}
	var servingSeen []bool
	eventually(t, 30*time.Second, victim.Name+"'s endpoint terminating", func() error {
		p, err := getPod(ns, victim.Name)
		if err != nil {
			return err
		}
		if p.UID != victim.UID || p.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s uid %s deletionTimestamp %v", p.Name, p.UID, p.DeletionTimestamp)
		}
		eps, err := e.endpoints()
		if err != nil {
			return err
		}
		ep, ok := eps[victim.UID]
		if !ok {
			return fmt.Errorf("no endpoint for the terminating pod %s (want it listed, terminating)", victim.Name)
		}
		if !isSet(ep.Conditions.Terminating) {
			return fmt.Errorf("endpoint of %s: conditions %s", victim.Name, conditionsText(ep.Conditions))
		}
		if isSet(ep.Conditions.Ready) {
			return fmt.Errorf("terminating endpoint of %s is ready: %s", victim.Name, conditionsText(ep.Conditions))
		}
		if len(ep.Addresses) != 1 || ep.Addresses[0] != victimBackend.Status.PodIP {
			return fmt.Errorf("terminating endpoint of %s addresses %v, want the backend pod's %s", victim.Name,
				ep.Addresses, victimBackend.Status.PodIP)
		}
		if ep.Conditions.Serving != nil {
			servingSeen = append(servingSeen, *ep.Conditions.Serving)
		}
		return nil
	})
	step(fmt.Sprintf("deleted burst pod %s listed terminating=true ready=false (serving %v)", victim.Name, servingSeen))
	// While its backend pod takes its 8 s to stop, the cluster pod and its endpoint stay.
	consistently(t, 3*time.Second, victim.Name+" still terminating and listed", func() error {
		if b := backendPodFor(t, bns, &victim); b == nil {
			return nil // the backend pod went already: nothing to hold any more
		}
		eps, err := e.endpoints()
		if err != nil {
			return err
		}
		ep, ok := eps[victim.UID]
		if !ok {
			if p, err := getPod(ns, victim.Name); err == nil && p.UID == victim.UID &&
				p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				return fmt.Errorf("endpoint of %s gone while the pod is %s and its backend pod still there",
					victim.Name, p.Status.Phase)
			}
			return nil
		}
		if !isSet(ep.Conditions.Terminating) || isSet(ep.Conditions.Ready) {
			return fmt.Errorf("endpoint of %s: conditions %s", victim.Name, conditionsText(ep.Conditions))
		}
		return nil
	})
	eventually(t, 60*time.Second, victim.Name+" and its endpoint gone", func() error {
		eps, err := e.endpoints()
		if err != nil {
			return err
		}
		if ep, ok := eps[victim.UID]; ok {
			return fmt.Errorf("endpoint of %s still listed: %s", victim.Name, conditionsText(ep.Conditions))
		}
		if b := backendPodFor(t, bns, &victim); b != nil {
			return fmt.Errorf("backend pod %s still there", b.Name)
		}
		if p, err := getPod(ns, victim.Name); err == nil && p.UID == victim.UID {
			return fmt.Errorf("pod %s still there (phase %s)", p.Name, p.Status.Phase)
		} else if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	})
	step("deleted burst pod gone from the slices, the cluster and the backend")
	for _, line := range stopRecording() {
		t.Logf("  %s", line)
	}
	// The ReplicaSet's replacement goes to the virtual node (the spread counts no terminating
	// pod), and is listed like the others.
	e.match(6, 2)
	step("replacement listed: 6 replicas (2 burst)")

	// Scale down: the slices follow, the burst pods among them.
	e.scale(2)
	e.match(2, -1)
	step("scaled to 2: the slices follow")
}

// svcEndpoints reads a Service's EndpointSlices and checks them against its Deployment's pods.
type svcEndpoints struct {
	t    *testing.T
	ns   string
	bns  string
	svc  string
	node string // the virtual node
}

// endpoints are the endpoints of all the Service's slices by the UID of their target pod; an
// endpoint without a targetRef or listed twice is an error.
func (e *svcEndpoints) endpoints() (map[types.UID]discoveryv1.Endpoint, error) {
	slices, err := env.cluster.DiscoveryV1().EndpointSlices(e.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + e.svc})
	if err != nil {
		return nil, err
	}
	out := map[types.UID]discoveryv1.Endpoint{}
	for _, s := range slices.Items {
		if s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" {
			return nil, fmt.Errorf("slice %s managed by %q", s.Name, s.Labels[discoveryv1.LabelManagedBy])
		}
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		if len(s.Endpoints) > 0 && (len(s.Ports) != 1 || s.Ports[0].Port == nil || *s.Ports[0].Port != 8080 ||
			s.Ports[0].Name == nil || *s.Ports[0].Name != "http") {
			return nil, fmt.Errorf("slice %s ports %+v, want http 8080", s.Name, s.Ports)
		}
		for _, ep := range s.Endpoints {
			if ep.TargetRef == nil {
				return nil, fmt.Errorf("slice %s: endpoint %v without targetRef", s.Name, ep.Addresses)
			}
			if _, dup := out[ep.TargetRef.UID]; dup {
				return nil, fmt.Errorf("pod %s listed twice", ep.TargetRef.Name)
			}
			out[ep.TargetRef.UID] = ep
		}
	}
	return out, nil
}

// pods are the Deployment's pods.
func (e *svcEndpoints) pods() ([]corev1.Pod, error) {
	list, err := env.cluster.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// burstPods are the Deployment's pods on the virtual node that are not being deleted.
func (e *svcEndpoints) burstPods() []corev1.Pod {
	e.t.Helper()
	pods, err := e.pods()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == e.node && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		e.t.Fatalf("no burst pod on %s", e.node)
	}
	return out
}

// match waits until exactly replicas pods run, all Ready, burst of them (-1: any number) on
// the virtual node, and the slices list exactly those pods, each ready at its pod's IP, with a
// targetRef to it and its node's name; a burst pod's IP is its backend pod's.
func (e *svcEndpoints) match(replicas, burst int) {
	e.t.Helper()
	var summary []string
	defer func() { e.t.Logf("endpoints: %s", strings.Join(summary, ", ")) }()
	eventually(e.t, 90*time.Second, fmt.Sprintf("%d replicas (%d burst) listed in the Service's slices", replicas, burst),
		func() error {
			summary = nil
			pods, err := e.pods()
			if err != nil {
				return err
			}
			if len(pods) != replicas {
				return fmt.Errorf("%d pods, want %d", len(pods), replicas)
			}
			perNode := map[string]int{}
			for i := range pods {
				p := &pods[i]
				if p.DeletionTimestamp != nil {
					return fmt.Errorf("%s terminating", p.Name)
				}
				if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
					return fmt.Errorf("%s on %q phase %s IP %q", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
				}
				if c := condition(p, corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
					return fmt.Errorf("%s Ready %+v", p.Name, c)
				}
				perNode[p.Spec.NodeName]++
				if p.Spec.NodeName != e.node {
					if !strings.HasPrefix(p.Status.PodIP, "10.244.") {
						return fmt.Errorf("%s on %s IP %s, not from the cluster's pod CIDR", p.Name, p.Spec.NodeName, p.Status.PodIP)
					}
					continue
				}
				b := backendPodFor(e.t, e.bns, p)
				if b == nil {
					return fmt.Errorf("no backend pod for %s", p.Name)
				}
				if b.Status.PodIP == "" || p.Status.PodIP != b.Status.PodIP || len(p.Status.PodIPs) != 1 ||
					p.Status.PodIPs[0].IP != b.Status.PodIP {
					return fmt.Errorf("burst pod %s podIP %q podIPs %v, backend pod %s has %q", p.Name, p.Status.PodIP,
						p.Status.PodIPs, b.Name, b.Status.PodIP)
				}
				if !strings.HasPrefix(b.Status.PodIP, "10.245.") || !strings.HasPrefix(b.Spec.NodeName, "cci-fleet-") {
					return fmt.Errorf("backend pod %s on %q IP %q, not the backend fleet's", b.Name, b.Spec.NodeName,
						b.Status.PodIP)
				}
			}
			if burst >= 0 && perNode[e.node] != burst {
				return fmt.Errorf("pods per node %v, want %d on %s", perNode, burst, e.node)
			}
			eps, err := e.endpoints()
			if err != nil {
				return err
			}
			for i := range pods {
				p := &pods[i]
				ep, ok := eps[p.UID]
				if !ok {
					return fmt.Errorf("%s (on %s, %s) not in the slices", p.Name, p.Spec.NodeName, p.Status.PodIP)
				}
				if err := wantEndpoint(ep, p, true, true, false); err != nil {
					return err
				}
				summary = append(summary, fmt.Sprintf("%s@%s=%s", p.Name, *ep.NodeName, ep.Addresses[0]))
			}
			if len(eps) != replicas {
				var names []string
				for _, ep := range eps {
					names = append(names, ep.TargetRef.Name)
				}
				return fmt.Errorf("%d endpoints %v, want %d", len(eps), names, replicas)
			}
			return nil
		})
}

// record watches a pod and the Service's slices until the returned function is called, which
// returns what changed: the pod's phase, Ready and deletion, and its endpoint's conditions.
func (e *svcEndpoints) record(p corev1.Pod) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	lines := make(chan string, 1000)
	add := func(format string, args ...any) {
		select {
		case lines <- fmt.Sprintf("%5.1fs ", time.Since(start).Seconds()) + fmt.Sprintf(format, args...):
		default:
		}
	}
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		w, err := env.cluster.CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{
			FieldSelector: "metadata.name=" + p.Name, ResourceVersion: p.ResourceVersion})
		if err != nil {
			add("pod watch: %v", err)
			return
		}
		defer w.Stop()
		for ev := range w.ResultChan() {
			if q, ok := ev.Object.(*corev1.Pod); ok && q.UID == p.UID {
				ready := "none"
				if c := condition(q, corev1.PodReady); c != nil {
					ready = string(c.Status)
				}
				add("pod %s %s phase=%s Ready=%s deleting=%v", q.Name, ev.Type, q.Status.Phase, ready,
					q.DeletionTimestamp != nil)
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		w, err := env.cluster.DiscoveryV1().EndpointSlices(e.ns).Watch(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + e.svc})
		if err != nil {
			add("slice watch: %v", err)
			return
		}
		defer w.Stop()
		last := ""
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			now := "absent"
			for _, ep := range s.Endpoints {
				if ep.TargetRef != nil && ep.TargetRef.UID == p.UID {
					now = "listed " + conditionsText(ep.Conditions)
				}
			}
			if now != last {
				add("endpoint of %s %s (slice %s %s)", p.Name, now, s.Name, ev.Type)
				last = now
			}
		}
	}()
	return func() []string {
		cancel()
		<-done
		<-done
		close(lines)
		var out []string
		for l := range lines {
			out = append(out, l)
		}
		return out
	}
}

// wantEndpoint checks that ep is p's: its IP, a targetRef naming it, its node, and the conditions.
func wantEndpoint(ep discoveryv1.Endpoint, p *corev1.Pod, ready, serving, terminating bool) error {
	if len(ep.Addresses) != 1 || ep.Addresses[0] != p.Status.PodIP {
		return fmt.Errorf("endpoint of %s addresses %v, want [%s]", p.Name, ep.Addresses, p.Status.PodIP)
	}
	ref := ep.TargetRef
	if ref == nil || ref.Kind != "Pod" || ref.Namespace != p.Namespace || ref.Name != p.Name || ref.UID != p.UID {
		return fmt.Errorf("endpoint of %s targetRef %+v", p.Name, ref)
	}
	if ep.NodeName == nil || *ep.NodeName != p.Spec.NodeName {
		return fmt.Errorf("endpoint of %s nodeName %v, want %s", p.Name, ep.NodeName, p.Spec.NodeName)
	}
	c := ep.Conditions
	if c.Ready == nil || *c.Ready != ready || c.Serving == nil || *c.Serving != serving ||
		c.Terminating == nil || *c.Terminating != terminating {
		return fmt.Errorf("endpoint of %s conditions %s, want ready=%v serving=%v terminating=%v", p.Name,
			conditionsText(c), ready, serving, terminating)
	}
	return nil
}

func isSet(b *bool) bool { return b != nil && *b }

func conditionsText(c discoveryv1.EndpointConditions) string {
	s := func(b *bool) string {
		if b == nil {
			return "nil"
		}
		return fmt.Sprint(*b)
	}
	return fmt.Sprintf("ready=%s serving=%s terminating=%s", s(c.Ready), s(c.Serving), s(c.Terminating))
}

// scale sets the Deployment's replicas.
func (e *svcEndpoints) scale(replicas int32) {
	e.t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas))
	if _, err := env.cluster.AppsV1().Deployments(e.ns).Patch(context.Background(), "web", types.MergePatchType, patch,
		metav1.PatchOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// setBackendReady writes the backend pod's readiness as its kubelet would after a readiness
// probe failed (ready false) or passed again (ready true): every container's ready, then
// ContainersReady and Ready.
func (e *svcEndpoints) setBackendReady(name string, ready bool) {
	e.t.Helper()
	status, reason, message := corev1.ConditionTrue, "", ""
	if !ready {
		status, reason = corev1.ConditionFalse, "ContainersNotReady"
	}
	eventually(e.t, 15*time.Second, fmt.Sprintf("backend pod %s ready=%v written", name, ready), func() error {
		b, err := env.backend.CoreV1().Pods(e.bns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var names []string
		for i := range b.Status.ContainerStatuses {
			b.Status.ContainerStatuses[i].Ready = ready
			names = append(names, b.Status.ContainerStatuses[i].Name)
		}
		if !ready {
			message = "containers with unready status: [" + strings.Join(names, " ") + "]"
		}
		now := metav1.Now()
		for i := range b.Status.Conditions {
			c := &b.Status.Conditions[i]
			if c.Type == corev1.ContainersReady || c.Type == corev1.PodReady {
				c.Status, c.Reason, c.Message, c.LastTransitionTime = status, reason, message, now
			}
		}
		_, err = env.backend.CoreV1().Pods(e.bns).UpdateStatus(context.Background(), b, metav1.UpdateOptions{})
		return err
	})
	// Nothing on the backend writes it back (kwok's pod-ready stage matches Pending pods only).
	time.Sleep(time.Second)
	b, err := env.backend.CoreV1().Pods(e.bns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	if c := condition(b, corev1.PodReady); c == nil || c.Status != status {
		e.t.Fatalf("backend pod %s Ready went back to %+v", name, c)
	}
}

// dumpServiceState logs the pods, the backend pods and the slices, for a failed run.
func dumpServiceState(t *testing.T, ns, bns string) {
	ctx := context.Background()
	if pods, err := env.cluster.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			out, _ := yaml.Marshal(map[string]any{"name": p.Name, "uid": p.UID, "node": p.Spec.NodeName,
				"deletionTimestamp": p.DeletionTimestamp, "status": p.Status})
			t.Logf("cluster pod %s:\n%s", p.Name, out)
		}
	}
	if pods, err := env.backend.CoreV1().Pods(bns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			out, _ := yaml.Marshal(map[string]any{"name": p.Name, "source": p.Annotations["burstlet.io/source-name"],
				"node": p.Spec.NodeName, "deletionTimestamp": p.DeletionTimestamp, "status": p.Status})
			t.Logf("backend pod %s:\n%s", p.Name, out)
		}
	}
	if slices, err := env.cluster.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range slices.Items {
			out, _ := yaml.Marshal(map[string]any{"name": s.Name, "endpoints": s.Endpoints, "ports": s.Ports})
			t.Logf("EndpointSlice %s:\n%s", s.Name, out)
		}
	}
}
