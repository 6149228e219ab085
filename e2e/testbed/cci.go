package testbed

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// Backend plane modes (Config.Backend).
const (
	// BackendPlain is a plain Kubernetes API server: it runs any pod.
	BackendPlain = "plain"
	// BackendCCI behaves like CCI: the Network CRD and its controller, and admission policies that
	// refuse what CCI refuses (cci/policies.yaml).
	BackendCCI = "cci"
)

// CCI facts the mode imitates (docs/cci-api-facts.md).
const (
	// CCIFlavorAnnotation must be on every namespace, general-computing or gpu-accelerated.
	CCIFlavorAnnotation = "namespace.kubernetes.io/flavor"
	CCIFlavorGeneral    = "general-computing"
	// States of a Network (status.state).
	NetworkInitializing = "Initializing"
	NetworkActive       = "Active"
	NetworkFailed       = "Failed"
	// PlainNamespaceLabel=PlainNamespaceValue on a namespace exempts it from the pod and namespace
	// policies: a test that needs a plain backend in this mode (pods created straight on the
	// fleet, burstlet with provider.cci.api: kubernetes) works in such a namespace.
	PlainNamespaceLabel = "testbed.burstlet.io/backend"
	PlainNamespaceValue = "plain"
	// NetworkControllerName is the process (and its log, <state>/backend/<name>.log).
	NetworkControllerName = "cci-network-controller"
)

// NetworkGVR is CCI's Network resource.
var NetworkGVR = schema.GroupVersionResource{Group: "networking.cci.io", Version: "v1beta1", Resource: "networks"}

// The policy names (each refusal names its policy).
const (
	PolicyNamespaceFlavor = "cci-namespace-flavor"
	PolicyActiveNetwork   = "cci-pod-needs-active-network"
	PolicyPodResources    = "cci-pod-resources"
	PolicyPodHost         = "cci-pod-host"
	PolicyPodVolumes      = "cci-pod-volumes"
)

//go:embed cci/network-crd.yaml
var networkCRDManifest []byte

//go:embed cci/policies.yaml
var policiesManifest []byte

// CCIOptions configure the backend plane's CCI mode.
type CCIOptions struct {
	// NetworkDelay is how long a new Network stays Initializing before it turns Active (or
	// Failed).
	NetworkDelay time.Duration `json:"networkDelay"`
	// FailedSubnets: a Network whose spec.subnetID or spec.networkID is one of these turns
	// Failed instead of Active.
	FailedSubnets []string `json:"failedSubnets,omitempty"`
	// SlowSubnets: a Network whose spec.subnetID or spec.networkID is a key stays Initializing
	// for that long instead of NetworkDelay (a Network CCI is slow to activate).
	SlowSubnets map[string]time.Duration `json:"slowSubnets,omitempty"`
	// Accounts are the CCI gateway's accounts (DefaultCCIAccounts when empty); their keys and
	// tokens are made at start and written to files (CCIGateway), never to state.json.
	Accounts []CCIAccount `json:"accounts,omitempty"`
	// NamespacePending is how long a namespace created through the CCI gateway reads as Pending
	// (0: Active at once).
	NamespacePending time.Duration `json:"namespacePending"`
}

// DefaultCCIOptions: Networks turn Active after 1 s; no subnet fails or is slow; the gateway's
// accounts are DefaultCCIAccounts and its new namespaces are Pending for 2 s.
func DefaultCCIOptions() CCIOptions {
	return CCIOptions{NetworkDelay: time.Second, Accounts: DefaultCCIAccounts(), NamespacePending: 2 * time.Second}
}

// delay is how long a Network on these subnet and network IDs stays Initializing.
func (o CCIOptions) delay(ids ...string) time.Duration {
	for _, id := range ids {
		if d, ok := o.SlowSubnets[id]; ok && id != "" {
			return d
		}
	}
	return o.NetworkDelay
}

// ParseSlowSubnet reads ID=DURATION into SlowSubnets.
func (o *CCIOptions) ParseSlowSubnet(v string) error {
	id, d, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(id) == "" {
		return fmt.Errorf("slow subnet %q: want ID=DURATION", v)
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur < 0 {
		return fmt.Errorf("slow subnet %q: want ID=DURATION (a duration like 20s)", v)
	}
	if o.SlowSubnets == nil {
		o.SlowSubnets = map[string]time.Duration{}
	}
	o.SlowSubnets[strings.TrimSpace(id)] = dur
	return nil
}

// Args are the network controller's flags for these options.
func (o CCIOptions) Args() []string {
	args := []string{"--network-delay=" + o.NetworkDelay.String()}
	for _, s := range o.FailedSubnets {
		args = append(args, "--failed-subnet="+s)
	}
	for _, s := range slices.Sorted(maps.Keys(o.SlowSubnets)) {
		args = append(args, fmt.Sprintf("--slow-subnet=%s=%v", s, o.SlowSubnets[s]))
	}
	return args
}

func decodeUnstructured(data []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, err
		}
		if len(obj.Object) == 0 {
			continue
		}
		objs = append(objs, obj)
	}
}

var kindResources = map[string]schema.GroupVersionResource{
	"CustomResourceDefinition":         {Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	"ValidatingAdmissionPolicy":        {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"},
	"ValidatingAdmissionPolicyBinding": {Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"},
}

// applyManifest creates the cluster-scoped objects of a manifest (an existing one is replaced).
func applyManifest(ctx context.Context, dyn dynamic.Interface, data []byte) error {
	objs, err := decodeUnstructured(data)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		gvr, ok := kindResources[obj.GetKind()]
		if !ok {
			return fmt.Errorf("unsupported kind %s", obj.GetKind())
		}
		_, err := dyn.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			var cur *unstructured.Unstructured
			if cur, err = dyn.Resource(gvr).Get(ctx, obj.GetName(), metav1.GetOptions{}); err == nil {
				obj.SetResourceVersion(cur.GetResourceVersion())
				_, err = dyn.Resource(gvr).Update(ctx, obj, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}

// waitEstablished returns once the CustomResourceDefinition `name` is Established.
func waitEstablished(ctx context.Context, dyn dynamic.Interface, name string) error {
	crd := kindResources["CustomResourceDefinition"]
	return waitFor(ctx, nil, "CRD "+name+" established", func(ctx context.Context) error {
		obj, err := dyn.Resource(crd).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return nil
			}
		}
		return errors.New("not established yet")
	})
}

// installCRDs applies the plane's CRD files and waits until each CRD is served.
func (s *planeStarter) installCRDs(ctx context.Context) error {
	if len(s.spec.CRDFiles) == 0 {
		return nil
	}
	cfg, err := s.plane.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, file := range s.spec.CRDFiles {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		objs, err := decodeUnstructured(data)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := applyManifest(ctx, dyn, data); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, o := range objs {
			if err := waitEstablished(ctx, dyn, o.GetName()); err != nil {
				return err
			}
		}
	}
	return nil
}

// installCCI turns a started backend plane into the CCI stand-in: the Network CRD, the network
// controller (a process of the plane), the admission policies, then the CCI gateway in front of
// the API server (cci_gateway*.go); it returns once each policy bites, the controller has made a
// Network Active and the gateway answers.
func (s *planeStarter) installCCI(ctx context.Context, cs kubernetes.Interface) error {
	p := s.plane
	cfg, err := p.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := applyManifest(ctx, dyn, networkCRDManifest); err != nil {
		return err
	}
	if err := waitEstablished(ctx, dyn, "networks.networking.cci.io"); err != nil {
		return err
	}
	ctrl, err := s.start(ctx, NetworkControllerName, filepath.Join(s.binDir, "testbed"),
		append([]string{NetworkControllerName, "--kubeconfig=" + p.AdminKubeconfig}, s.spec.CCI.Args()...))
	if err != nil {
		return err
	}
	if err := applyManifest(ctx, dyn, policiesManifest); err != nil {
		return err
	}
	if err := waitFor(ctx, ctrl, "CCI policies in force", func(ctx context.Context) error {
		return probeCCI(ctx, cs, dyn)
	}); err != nil {
		return err
	}
	return s.startCCIGateway(ctx)
}

const probeNamespace = "testbed-cci-probe"

// probeCCI checks, with dry-run requests, that every policy refuses what it should and a valid
// pod is admitted in a namespace whose Network the controller made Active. The probe namespace
// is removed afterwards.
func probeCCI(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface) error {
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, dry)
	if err := expectRefusal(err, PolicyNamespaceFlavor); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNamespace,
		Annotations: map[string]string{CCIFlavorAnnotation: CCIFlavorGeneral}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := cs.CoreV1().ServiceAccounts(probeNamespace).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return err
	}
	pods := cs.CoreV1().Pods(probeNamespace)
	networks := dyn.Resource(NetworkGVR).Namespace(probeNamespace)
	if _, err := networks.Get(ctx, "probe", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		_, err = pods.Create(ctx, ProbePod("probe", "1", "2Gi"), dry)
		if err := expectRefusal(err, PolicyActiveNetwork); err != nil {
			return err
		}
		if _, err := networks.Create(ctx, NewNetwork("probe", "probe-subnet"), metav1.CreateOptions{}); err != nil &&
			!apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	net, err := networks.Get(ctx, "probe", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if state := NetworkState(net); state != NetworkActive {
		return fmt.Errorf("probe Network is %q, not %s yet", state, NetworkActive)
	}
	if _, err := pods.Create(ctx, ProbePod("probe", "1", "2Gi"), dry); err != nil {
		return fmt.Errorf("a valid pod is refused: %w", err)
	}
	refused := map[string]*corev1.Pod{PolicyPodResources: ProbePod("probe", "1", "1536Mi")}
	hostNet := ProbePod("probe", "1", "2Gi")
	hostNet.Spec.HostNetwork = true
	refused[PolicyPodHost] = hostNet
	hostPath := ProbePod("probe", "1", "2Gi")
	hostPath.Spec.Volumes = []corev1.Volume{{Name: "host",
		VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	refused[PolicyPodVolumes] = hostPath
	for policy, pod := range refused {
		_, err := pods.Create(ctx, pod, dry)
		if err := expectRefusal(err, policy); err != nil {
			return err
		}
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, probeNamespace, metav1.DeleteOptions{}); err != nil &&
		!apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func expectRefusal(err error, policy string) error {
	if err == nil {
		return fmt.Errorf("policy %s does not refuse yet", policy)
	}
	if !strings.Contains(err.Error(), "'"+policy+"'") {
		return fmt.Errorf("policy %s does not refuse yet: %w", policy, err)
	}
	return nil
}

// ProbePod is a pod CCI runs when its namespace has an Active Network: one container whose
// requests equal its limits.
func ProbePod(name, cpu, memory string) *corev1.Pod {
	list := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory)}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1",
				Resources: corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}}},
			AutomountServiceAccountToken: new(bool),
		},
	}
}

// NewNetwork is a Network as a CCI client creates it (docs/cci-api-facts.md), for subnet.
func NewNetwork(name, subnet string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.cci.io/v1beta1",
		"kind":       "Network",
		"metadata": map[string]any{
			"name": name,
			"annotations": map[string]any{
				"network.alpha.kubernetes.io/default-security-group": "sg-testbed",
				"network.alpha.kubernetes.io/domain-id":              "domain-testbed",
				"network.alpha.kubernetes.io/project-id":             "project-testbed",
			},
		},
		"spec": map[string]any{
			"attachedVPC":   "vpc-testbed",
			"networkType":   "underlay_neutron",
			"networkID":     "net-" + subnet,
			"subnetID":      subnet,
			"cidr":          "192.168.0.0/24",
			"availableZone": "testbed-1a",
		},
	}}
}

// NetworkState is a Network's status.state ("" before the controller saw it).
func NetworkState(obj *unstructured.Unstructured) string {
	state, _, _ := unstructured.NestedString(obj.Object, "status", "state")
	return state
}
