package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"burstlet/e2e/testbed"
)

// cciPlane is a backend plane in CCI mode with its clients.
type cciPlane struct {
	plane *testbed.Plane
	cs    *kubernetes.Clientset
	dyn   dynamic.Interface
}

// cciBackend returns the run's backend plane when it is in CCI mode (the default); otherwise
// (BURSTLET_TESTBED_BACKEND=plain) it starts a small test bed of its own in CCI mode, with the
// bad and slow subnets, for this test.
func cciBackend(t *testing.T) *cciPlane {
	t.Helper()
	plane := env.tb.Backend
	if plane.CCI == nil || len(plane.CCI.FailedSubnets) == 0 {
		cfg := testbed.DefaultConfig(os.Getenv("BURSTLET_BIN_DIR"), filepath.Join(filepath.Dir(env.tb.StateDir), "e2e-cci"))
		if err := cfg.WithRepoDefaults(); err != nil {
			t.Fatal(err)
		}
		cfg.ClusterWorkers.Count, cfg.BackendFleet.Count = 1, 1
		cfg.KillWithParent = true
		cfg.Backend = testbed.BackendCCI
		cfg.CCI = cciTestOptions()
		tb, err := testbed.Up(context.Background(), cfg)
		if err != nil {
			t.Fatalf("testbed up --backend cci: %v", err)
		}
		t.Logf("CCI-mode testbed up in %.1fs", tb.StartDur.Seconds())
		t.Cleanup(func() { _ = testbed.Down(cfg.StateDir, true) })
		plane = tb.Backend
	}
	cs, err := plane.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := plane.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return &cciPlane{plane: plane, cs: cs, dyn: dyn}
}

// namespace creates a namespace CCI accepts (with the flavor annotation) for the test.
func (c *cciPlane) namespace(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("cci-%s-%d", suffix, time.Now().UnixNano()%100000)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Annotations: map[string]string{testbed.CCIFlavorAnnotation: testbed.CCIFlavorGeneral}}}
	if _, err := c.cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("namespace with the flavor annotation: %v", err)
	}
	t.Cleanup(func() {
		_ = c.cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	eventually(t, 30*time.Second, "default ServiceAccount in "+name, func() error {
		_, err := c.cs.CoreV1().ServiceAccounts(name).Get(context.Background(), "default", metav1.GetOptions{})
		return err
	})
	return name
}

// network creates a Network on subnet in ns and waits until the controller made it want.
func (c *cciPlane) network(t *testing.T, ns, subnet, want string) {
	t.Helper()
	networks := c.dyn.Resource(testbed.NetworkGVR).Namespace(ns)
	if _, err := networks.Create(context.Background(), testbed.NewNetwork("default-network", subnet),
		metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Network: %v", err)
	}
	c.waitNetwork(t, ns, want)
}

func (c *cciPlane) waitNetwork(t *testing.T, ns, want string) {
	t.Helper()
	networks := c.dyn.Resource(testbed.NetworkGVR).Namespace(ns)
	eventually(t, 30*time.Second, "Network "+want, func() error {
		net, err := networks.Get(context.Background(), "default-network", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := testbed.NetworkState(net); got != want {
			return fmt.Errorf("Network is %q", got)
		}
		return nil
	})
}

// refused checks that err is the refusal of policy, a 422 whose message says the rule.
func refused(t *testing.T, what string, err error, policy, rule string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: admitted, want refused by %s (%q)", what, policy, rule)
		return
	}
	msg := err.Error()
	if !apierrors.IsInvalid(err) || !strings.Contains(msg, "ValidatingAdmissionPolicy '"+policy+"'") ||
		!strings.Contains(msg, rule) {
		t.Errorf("%s: got %v, want a 422 from policy %s saying %q", what, err, policy, rule)
		return
	}
	t.Logf("%s: refused: %s", what, msg)
}

func resources(cpu, memory string) corev1.ResourceRequirements {
	list := corev1.ResourceList{}
	if cpu != "" {
		list[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		list[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}
}

// The backend plane in CCI mode refuses what CCI refuses: a namespace without its flavor, a pod in
// a namespace without an Active Network, and pods that break CCI's container rules (DESIGN.md
// section 7), each refusal naming its rule; pods within the rules are admitted.
func TestCciPlaneRefusesWhatCciRefuses(t *testing.T) {
	c := cciBackend(t)
	ctx := context.Background()

	t.Run("namespace flavor", func(t *testing.T) {
		for _, annotations := range []map[string]string{nil, {testbed.CCIFlavorAnnotation: "fast"}} {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cci-no-flavor", Annotations: annotations}}
			_, err := c.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			refused(t, fmt.Sprintf("namespace with annotations %v", annotations), err, testbed.PolicyNamespaceFlavor,
				"CCI: a namespace needs the annotation namespace.kubernetes.io/flavor")
		}
	})

	// A valid pod: refused until the namespace's Network is Active, then admitted.
	ns := c.namespace(t, "rules")
	pods := c.cs.CoreV1().Pods(ns)
	valid := func(name string) *corev1.Pod { return testbed.ProbePod(name, "1", "2Gi") }
	_, err := pods.Create(ctx, valid("before-network"), metav1.CreateOptions{})
	refused(t, "pod in a namespace without a Network", err, testbed.PolicyActiveNetwork,
		"no params found for policy binding with `Deny` parameterNotFoundAction")
	networks := c.dyn.Resource(testbed.NetworkGVR).Namespace(ns)
	if _, err := networks.Create(ctx, testbed.NewNetwork("default-network", "subnet-good"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Network: %v", err)
	}
	// Right after its creation the Network is not Active (the policy may not even see it yet).
	_, err = pods.Create(ctx, valid("network-not-active"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "'"+testbed.PolicyActiveNetwork+"'") {
		t.Errorf("pod in a namespace whose Network was just created: got %v, want a refusal by %s", err,
			testbed.PolicyActiveNetwork)
	} else {
		t.Logf("pod while the Network is not Active: refused: %v", err)
	}
	c.waitNetwork(t, ns, testbed.NetworkActive)
	eventually(t, 20*time.Second, "a valid pod admitted once the Network is Active", func() error {
		_, err := pods.Create(ctx, valid("network-active"), metav1.CreateOptions{})
		return err
	})

	rules := []struct {
		name, policy, rule string
		pod                func(p *corev1.Pod)
	}{
		{"no container with CPU", testbed.PolicyPodResources, "CCI: at least one container must have CPU > 0",
			func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("", "2Gi") }},
		{"requests unlike limits", testbed.PolicyPodResources, "CCI: container requests must equal limits (app)",
			func(p *corev1.Pod) { // 1 core requested, 2 the limit, 4Gi
				p.Spec.Containers[0].Resources = resources("1", "4Gi")
				p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("2")
			}},
		{"CPU not a multiple of 0.25 core", testbed.PolicyPodResources, "CCI: container CPU must be a multiple of 0.25 core",
			func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("1100m", "4Gi") }},
		{"pod memory not a multiple of 1Gi", testbed.PolicyPodResources, "CCI: pod memory must be a multiple of 1Gi",
			func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("1", "2560Mi") }},
		{"memory per core below 2", testbed.PolicyPodResources, "CCI: pod memory/CPU must be between 2 and 8 Gi per core",
			func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("2", "2Gi") }},
		{"memory per core above 8", testbed.PolicyPodResources, "CCI: pod memory/CPU must be between 2 and 8 Gi per core",
			func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("1", "9Gi") }},
		{"more than 32 cores", testbed.PolicyPodResources, "CCI: pod must not exceed 32 cores and 256Gi",
			func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("33", "66Gi") }},
		{"more than 32 cores and 256Gi", testbed.PolicyPodResources, "CCI: pod must not exceed 32 cores and 256Gi",
			func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("40", "300Gi") }},
		{"app containers summed", testbed.PolicyPodResources, "CCI: pod memory must be a multiple of 1Gi",
			func(p *corev1.Pod) { // 1.25 cores, 2.5Gi
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "registry.local/side:1",
					Resources: resources("250m", "512Mi")})
			}},
		{"an init container larger than the app containers", testbed.PolicyPodResources,
			"CCI: pod must not exceed 32 cores and 256Gi",
			func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "registry.local/init:1",
					Resources: resources("40", "80Gi")}}
			}},
		{"hostNetwork", testbed.PolicyPodHost, "CCI: hostNetwork is not supported",
			func(p *corev1.Pod) { p.Spec.HostNetwork = true }},
		{"hostPID", testbed.PolicyPodHost, "CCI: hostPID is not supported",
			func(p *corev1.Pod) { p.Spec.HostPID = true }},
		{"hostIPC", testbed.PolicyPodHost, "CCI: hostIPC is not supported",
			func(p *corev1.Pod) { p.Spec.HostIPC = true }},
		{"a DaemonSet's pod", testbed.PolicyPodHost, "CCI: DaemonSet pods are not supported",
			func(p *corev1.Pod) {
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet",
					Name: "agent", UID: "00000000-0000-0000-0000-000000000001"}}
			}},
		{"a hostPath volume", testbed.PolicyPodVolumes, "CCI: volumes may only be configMap, secret, emptyDir, " +
			"downwardAPI, projected or persistentVolumeClaim (host)",
			func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "host",
					VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var"}}}}
			}},
		{"an emptyDir with subPath", testbed.PolicyPodVolumes, "CCI: an emptyDir volume cannot be mounted with subPath (app)",
			func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "scratch",
					VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/s", SubPath: "x"}}
			}},
	}
	for i, r := range rules {
		p := valid(fmt.Sprintf("rule-%d", i))
		r.pod(p)
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		refused(t, r.name, err, r.policy, r.rule)
	}

	// Within the rules: the pod-level values, BestEffort sidecars and every allowed volume kind.
	admitted := []struct {
		name string
		pod  func(p *corev1.Pod)
	}{
		{"two containers summing to 1 core and 2Gi", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = resources("500m", "1Gi")
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "registry.local/side:1",
				Resources: resources("500m", "1Gi")})
		}},
		{"a BestEffort sidecar", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "registry.local/side:1"})
		}},
		{"an init container smaller than the app containers", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "registry.local/init:1",
				Resources: resources("250m", "512Mi")}}
		}},
		{"32 cores and 256Gi", func(p *corev1.Pod) { p.Spec.Containers[0].Resources = resources("32", "256Gi") }},
		{"every allowed volume kind", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Optional: new(true)}}},
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "s", Optional: new(true)}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
					Items: []corev1.DownwardAPIVolumeFile{{Path: "labels",
						FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
					ClaimName: "data"}}},
			}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/s"},
				{Name: "cm", MountPath: "/cm", SubPath: "key"}}
		}},
	}
	for i, a := range admitted {
		p := valid(fmt.Sprintf("within-%d", i))
		a.pod(p)
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Errorf("%s: refused: %v", a.name, err)
		}
	}

	t.Run("failed Network", func(t *testing.T) {
		ns := c.namespace(t, "failed")
		c.network(t, ns, c.plane.CCI.FailedSubnets[0], testbed.NetworkFailed)
		_, err := c.cs.CoreV1().Pods(ns).Create(ctx, valid("on-failed-network"), metav1.CreateOptions{})
		refused(t, "pod in a namespace whose Network is Failed", err, testbed.PolicyActiveNetwork,
			"CCI: the namespace has no active Network (Network default-network is Failed)")
	})

	t.Run("system namespaces are exempt", func(t *testing.T) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "cci-exempt-"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1"}},
				HostNetwork: true}}
		created, err := c.cs.CoreV1().Pods("kube-system").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("a pod in kube-system: %v", err)
		}
		_ = c.cs.CoreV1().Pods("kube-system").Delete(ctx, created.Name, metav1.DeleteOptions{})
	})
}
