package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cases of test/provider/cci/normalize_test.cc, as pods on the virtual node of a CCI daemon.

// memoryFloor is kFloor: 0.2Gi rounded up to a whole byte, the container memory floor.
const memoryFloor = "214748365"

// same is the unit test's same(): resources with requests == limits; an empty value is left out.
func same(cpu, memory string) string {
	var list []string
	if cpu != "" {
		list = append(list, `"cpu":"`+cpu+`"`)
	}
	if memory != "" {
		list = append(list, `"memory":"`+memory+`"`)
	}
	l := strings.Join(list, ",")
	return `{"requests":{` + l + `},"limits":{` + l + `}}`
}

// normalizeWant is what becomes of a case's cluster pod: exactly one of the three.
type normalizeWant struct {
	// It runs: its backend pod's resources per container (JSON, "" for none) and pod annotations.
	containers, inits []string
	cpu, memory       string
	// burstlet fails it with this status reason, its message containing says.
	reason, says string
	// The cluster's API server refuses the create with this reason: the pod never reaches
	// burstlet.
	refusedAs metav1.StatusReason
}

func runs(containers, inits []string, cpu, memory string) normalizeWant {
	return normalizeWant{containers: containers, inits: inits, cpu: cpu, memory: memory}
}

func failsWith(reason, says string) normalizeWant { return normalizeWant{reason: reason, says: says} }

func apiRefuses(reason metav1.StatusReason) normalizeWant { return normalizeWant{refusedAs: reason} }

// noCPU is what burstlet's admission (validate.h) says of a pod with no app container setting
// CPU > 0: it refuses it as NoCPURequest before normalizing.
var noCPU = failsWith("NoCPURequest", "CCI needs at least one container with CPU > 0")

type normalizeCase struct {
	name              string   // the C++ case's
	containers, inits []string // each container's resources as written (JSON, "" for none)
	want              normalizeWant
	annotations       map[string]string // of the cluster pod
}

// normalizeCases: kCases, kErrorCases and the NormalizeOtherTest tests, in their order.
func normalizeCases() []normalizeCase {
	tooLarge := func(says string) normalizeWant { return failsWith("PodTooLarge", says) }
	return []normalizeCase{
		// kCases: normalized, and run by the backend plane.
		{name: "AlreadyConformingIsUnchanged", containers: []string{same("1", "2Gi")},
			want: runs([]string{same("1", "2Gi")}, nil, "1", "2Gi")},
		{name: "CpuRoundsUpTo250mAndPodMemoryToGi", containers: []string{`{"limits":{"cpu":"300m","memory":"512Mi"}}`},
			want: runs([]string{same("500m", "1Gi")}, nil, "500m", "1Gi")},
		{name: "LimitsWinOverRequestsAndRequestsBecomeLimits",
			containers: []string{`{"requests":{"cpu":"100m","memory":"256Mi"},"limits":{"cpu":"1","memory":"1Gi"}}`},
			want:       runs([]string{same("1", "2Gi")}, nil, "1", "2Gi")},
		{name: "RequestsUsedWithoutLimits", containers: []string{`{"requests":{"cpu":"750m","memory":"3Gi"}}`},
			want: runs([]string{same("750m", "3Gi")}, nil, "750m", "3Gi")},
		{name: "LimitOfOneResourceRequestOfTheOther", containers: []string{`{"requests":{"memory":"1Gi"},"limits":{"cpu":"500m"}}`},
			want: runs([]string{same("500m", "1Gi")}, nil, "500m", "1Gi")},
		// A JSON number, as written: the API server takes it and keeps it as the string "2".
		{name: "IntegerQuantitiesAreAccepted", containers: []string{`{"limits":{"cpu":2,"memory":"4Gi"}}`},
			want: runs([]string{same("2", "4Gi")}, nil, "2", "4Gi")},
		{name: "CanonicalForms", containers: []string{`{"limits":{"cpu":"1.5","memory":"1.5Gi"}}`},
			want: runs([]string{same("1500m", "3Gi")}, nil, "1500m", "3Gi")},
		{name: "DecimalMemoryStaysDecimalInTheContainer", containers: []string{`{"limits":{"cpu":"500m","memory":"1G"}}`},
			want: runs([]string{same("500m", "1073741824")}, nil, "500m", "1Gi")},
		{name: "MemoryFloorIsNotRounded",
			containers: []string{same("1", "2Gi"), `{"limits":{"cpu":"250m","memory":"100Mi"}}`},
			want:       runs([]string{same("1", "3006477107"), same("250m", memoryFloor)}, nil, "1250m", "3Gi")},
		// No CPU anywhere: normalizePod would size it (500m, 4Gi), but admission refuses it first.
		{name: "MemoryOnlyContainerGetsCpuFromTheRatio", containers: []string{`{"limits":{"memory":"4Gi"}}`},
			want: noCPU},
		{name: "MemoryOnlySecondContainerKeepsNoCpu", containers: []string{same("1", "1Gi"), `{"requests":{"memory":"1Gi"}}`},
			want: runs([]string{same("1", "1Gi"), same("", "1Gi")}, nil, "1", "2Gi")},
		{name: "CpuOnlyContainerGetsTheMemoryFloorThenTheRatio", containers: []string{`{"requests":{"cpu":"2"}}`},
			want: runs([]string{same("2", "4Gi")}, nil, "2", "4Gi")},
		{name: "RatioBelowTwoRaisesMemory", containers: []string{same("4", "1Gi")},
			want: runs([]string{same("4", "8Gi")}, nil, "4", "8Gi")},
		{name: "RatioBelowTwoRaisesMemoryToAWholeGi", containers: []string{`{"limits":{"cpu":"1.1","memory":"1Gi"}}`},
			want: runs([]string{same("1250m", "3Gi")}, nil, "1250m", "3Gi")},
		{name: "RatioExactlyEightIsKept", containers: []string{same("1", "8Gi")},
			want: runs([]string{same("1", "8Gi")}, nil, "1", "8Gi")},
		{name: "RatioExactlyTwoIsKept", containers: []string{same("3", "6Gi")},
			want: runs([]string{same("3", "6Gi")}, nil, "3", "6Gi")},
		{name: "RatioAboveEightRaisesCpu", containers: []string{same("250m", "10Gi")},
			want: runs([]string{same("1250m", "10Gi")}, nil, "1250m", "10Gi")},
		{name: "RatioAboveEightRaisesCpuToAWholeQuarter", containers: []string{same("250m", "9Gi")},
			want: runs([]string{same("1250m", "9Gi")}, nil, "1250m", "9Gi")},
		{name: "IncrementsGoToTheFirstNonBestEffortContainer",
			containers: []string{"", same("1", "1Gi"), `{"requests":{"cpu":"500m","memory":"512Mi"}}`},
			want:       runs([]string{"", same("1", "2560Mi"), same("500m", "512Mi")}, nil, "1500m", "3Gi")},
		{name: "ZeroValuesMakeABestEffortContainer", containers: []string{`{"requests":{"cpu":"0"}}`, same("1", "2Gi")},
			want: runs([]string{`{"requests":{"cpu":"0"}}`, same("1", "2Gi")}, nil, "1", "2Gi")},
		{name: "InitContainersAreNormalizedToo", containers: []string{same("1", "2Gi")}, inits: []string{`{"requests":{"cpu":"100m"}}`},
			want: runs([]string{same("1", "2Gi")}, []string{same("250m", memoryFloor)}, "1", "2Gi")},
		{name: "InitContainerDominatesCpu", containers: []string{same("500m", "1Gi")}, inits: []string{same("2", "1Gi")},
			want: runs([]string{same("500m", "4Gi")}, []string{same("2", "1Gi")}, "2", "4Gi")},
		{name: "InitContainerDominatesMemoryThatIsRaised", containers: []string{same("250m", "256Mi")}, inits: []string{same("250m", "1536Mi")},
			want: runs([]string{same("250m", "2Gi")}, []string{same("250m", "1536Mi")}, "250m", "2Gi")},
		{name: "BestEffortInitContainerIsLeftAlone", containers: []string{same("1", "2Gi")}, inits: []string{""},
			want: runs([]string{same("1", "2Gi")}, []string{""}, "1", "2Gi")},
		{name: "SumOfAppContainers",
			containers: []string{same("250m", "1Gi"), same("250m", "1Gi"), same("250m", "1Gi")}, inits: []string{same("500m", "1Gi")},
			want: runs([]string{same("250m", "1Gi"), same("250m", "1Gi"), same("250m", "1Gi")}, []string{same("500m", "1Gi")},
				"750m", "3Gi")},
		{name: "ExactlyAtTheLimitIsAccepted", containers: []string{same("32", "256Gi")},
			want: runs([]string{same("32", "256Gi")}, nil, "32", "256Gi")},
		{name: "RoundingUpToTheLimitIsAccepted", containers: []string{same("31.9", "255.5Gi")},
			want: runs([]string{same("32", "256Gi")}, nil, "32", "256Gi")},

		// kErrorCases: refused, never on the backend.
		{name: "AboveThirtyTwoCores", containers: []string{same("33", "66Gi")},
			want: tooLarge("pod needs 33 CPU after normalization, CCI allows at most 32")},
		{name: "RoundingPushesCpuOverTheLimit", containers: []string{same("32.1", "128Gi")},
			want: tooLarge("pod needs 32250m CPU after normalization, CCI allows at most 32")},
		{name: "SumOfContainersOverTheLimit", containers: []string{same("16.1", "64Gi"), same("16.1", "64Gi")},
			want: tooLarge("pod needs 32500m CPU after normalization, CCI allows at most 32")},
		{name: "InitContainerOverTheLimit", containers: []string{same("1", "2Gi")}, inits: []string{same("40", "80Gi")},
			want: tooLarge("pod needs 40 CPU after normalization, CCI allows at most 32")},
		{name: "MemoryRoundingPushesOverTheLimit", containers: []string{same("32", "256.5Gi")},
			want: tooLarge("pod needs 32250m CPU after normalization, CCI allows at most 32; pod needs 257Gi memory " +
				"after normalization, CCI allows at most 256Gi")},
		// No CPU anywhere: admission refuses it as NoCPURequest before normalization finds it
		// PodTooLarge.
		{name: "MemoryOnlyPodTooLarge", containers: []string{`{"limits":{"memory":"300Gi"}}`}, want: noCPU},
		{name: "CpuOverTheLimitByAQuarter", containers: []string{same("32", "1Gi"), same("250m", "1Gi")},
			want: tooLarge("pod needs 32250m CPU after normalization, CCI allows at most 32")},
		// NoCPURequest in the unit test too; here admission says it, in its own words.
		{name: "AllBestEffort", containers: []string{"", `{"requests":{"cpu":"0"}}`}, want: noCPU},
		{name: "OnlyInitContainerSized", containers: []string{""}, inits: []string{same("1", "2Gi")}, want: noCPU},
		// Malformed quantities (InvalidQuantity in the unit test) do not decode on the cluster's API
		// server, so the pod is refused on create and never reaches burstlet.
		{name: "MalformedAppQuantity", containers: []string{same("1", "2Gi"), `{"limits":{"cpu":"abc"}}`},
			want: apiRefuses(metav1.StatusReasonBadRequest)},
		{name: "MalformedInitQuantity", containers: []string{same("1", "2Gi")}, inits: []string{`{"requests":{"memory":"1Qi"}}`},
			want: apiRefuses(metav1.StatusReasonBadRequest)},
		{name: "MalformedBestEffortLookingQuantity", containers: []string{same("1", "2Gi"), `{"requests":{"memory":""}}`},
			want: apiRefuses(metav1.StatusReasonBadRequest)},
		// A negative request (InvalidQuantity in the unit test) fails the API server's validation.
		{name: "NegativeQuantity", containers: []string{`{"requests":{"cpu":"-1"}}`},
			want: apiRefuses(metav1.StatusReasonInvalid)},
		// The JSON number 0.5 (InvalidQuantity in the unit test) is a valid quantity to the API
		// server, which stores it as "500m": burstlet only ever sees the string, and the pod runs
		// as a CPU-only container does (the memory floor, then the ratio).
		{name: "FractionalNumber", containers: []string{`{"limits":{"cpu":0.5}}`},
			want: runs([]string{same("500m", "1Gi")}, nil, "500m", "1Gi")},

		// NormalizeOtherTest.OtherResourcesAndFieldsAreKept, without its nvidia.com/gpu limit:
		// neither the virtual node nor the backend fleet has GPUs, so such a pod never runs (and
		// the API server would copy the limit into the requests anyway).
		{name: "OtherResourcesAndFieldsAreKept", annotations: map[string]string{"keep": "me"},
			containers: []string{`{"requests":{"cpu":"1","memory":"2Gi","ephemeral-storage":"1Gi"}}`},
			want: runs([]string{`{"requests":{"cpu":"1","memory":"2Gi","ephemeral-storage":"1Gi"},` +
				`"limits":{"cpu":"1","memory":"2Gi"}}`}, nil, "1", "2Gi")},
		// NormalizeOtherTest.PodWithoutContainersIsRejected (NoCPURequest in the unit test): the API
		// server requires a container. (Its other half, a pod that is not an object, cannot be
		// sent at all.)
		{name: "PodWithoutContainersIsRejected", want: apiRefuses(metav1.StatusReasonInvalid)},
	}
}

// podName is the case's name in DNS-1123 form: AboveThirtyTwoCores is above-thirty-two-cores.
func (c normalizeCase) podName() string {
	var b strings.Builder
	for i, r := range c.name {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	name := b.String()
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimRight(name, "-")
}

// body is the case's cluster pod as JSON: on d's node, its containers c0, c1, ... and init
// containers i0, ... with their resources exactly as the case writes them.
func (c normalizeCase) body(t *testing.T, d *daemon) []byte {
	t.Helper()
	spec := podSpecFor(d)
	template := spec.Containers[0]
	spec.Containers = nil
	for i := range c.containers {
		spec.Containers = append(spec.Containers, template)
		spec.Containers[i].Name = fmt.Sprintf("c%d", i)
	}
	for i := range c.inits {
		spec.InitContainers = append(spec.InitContainers, template)
		spec.InitContainers[i].Name = fmt.Sprintf("i%d", i)
	}
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: c.podName(), Annotations: c.annotations}, Spec: spec}
	var obj map[string]any
	if raw, err := json.Marshal(pod); err != nil || json.Unmarshal(raw, &obj) != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	s := obj["spec"].(map[string]any)
	if len(c.containers) == 0 {
		delete(s, "containers")
	}
	setResources(s, "containers", c.containers)
	setResources(s, "initContainers", c.inits)
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return out
}

// setResources gives each container of spec[key] its resources as raw JSON ("" for none).
func setResources(spec map[string]any, key string, resources []string) {
	list, _ := spec[key].([]any)
	for i, r := range resources {
		container := list[i].(map[string]any)
		if r == "" {
			delete(container, "resources")
		} else {
			container["resources"] = json.RawMessage(r)
		}
	}
}

// createRawPod posts a pod as JSON, as kubectl would, quantities and all.
func createRawPod(ns string, body []byte) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	err := env.cluster.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").
		SetHeader("Content-Type", "application/json").Body(body).Do(context.Background()).Into(p)
	return p, err
}

// Every case of burstlet's normalization unit tests (test/provider/cci/normalize_test.cc) as a
// pod on the virtual node: what normalization sizes runs on the CCI-like backend plane with
// exactly the normalized requests, limits and pod-level annotations, and none is refused there;
// what burstlet refuses ends Failed with the unit test's reason and never reaches the backend;
// what the cluster's API server cannot take is refused on create.
func TestCciNormalizationCasesThroughTheCluster(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	cases := normalizeCases()
	pods := make([]*corev1.Pod, len(cases))
	errs := make([]error, len(cases))
	for i, c := range cases {
		pods[i], errs[i] = createRawPod(ns, c.body(t, d.daemon))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			switch {
			case c.want.refusedAs != "":
				refusedOnCreate(t, errs[i], c.want.refusedAs)
			case errs[i] != nil:
				t.Fatalf("create %s: %v", c.podName(), errs[i])
			case c.want.reason != "":
				failedByBurstlet(t, d, pods[i], c.want)
			default:
				runsNormalized(t, d, pods[i], c)
			}
		})
	}
}

func refusedOnCreate(t *testing.T, err error, want metav1.StatusReason) {
	t.Helper()
	if err == nil {
		t.Fatalf("the cluster's API server took the pod, want it refused (%s)", want)
	}
	if got := apierrors.ReasonForError(err); got != want {
		t.Errorf("refused as %s, want %s: %v", got, want, err)
	}
	t.Logf("refused: %v", err)
}

// failedByBurstlet: the pod ends Failed with the reason and message, and has no backend pod.
func failedByBurstlet(t *testing.T, d *cciDaemon, p *corev1.Pod, want normalizeWant) {
	t.Helper()
	eventually(t, 60*time.Second, p.Name+" Failed", func() error {
		got, err := getPod(p.Namespace, p.Name)
		if err != nil {
			return err
		}
		if p = got; p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s reason %q", p.Status.Phase, p.Status.Reason)
		}
		return nil
	})
	if p.Status.Reason != want.reason || !strings.Contains(p.Status.Message, want.says) {
		t.Errorf("reason %q message %q, want %q saying %q", p.Status.Reason, p.Status.Message, want.reason, want.says)
	}
	if backendPodFor(t, d.backendNamespace(), p) != nil {
		t.Errorf("%s reached the backend", p.Name)
	}
	t.Logf("%s: %s", p.Status.Reason, p.Status.Message)
}

// runsNormalized: the pod runs, its backend pod has exactly the normalized resources and pod-level
// annotations (and the pod's own), and the backend plane refused nothing on the way.
func runsNormalized(t *testing.T, d *cciDaemon, p *corev1.Pod, c normalizeCase) {
	t.Helper()
	var b *corev1.Pod
	eventually(t, 60*time.Second, p.Name+" Running with a backend pod", func() error {
		got, err := getPod(p.Namespace, p.Name)
		if err != nil {
			return err
		}
		if err := runningOn(got, d.node); err != nil {
			return fmt.Errorf("%v; warnings: %v", err, warnings(t, got))
		}
		if b = backendPodFor(t, d.backendNamespace(), got); b == nil {
			return fmt.Errorf("no backend pod")
		}
		return nil
	})
	sameResources(t, "containers", b.Spec.Containers, c.want.containers)
	sameResources(t, "initContainers", b.Spec.InitContainers, c.want.inits)
	sameQuantity(t, b, "virtual-kubelet.cci.io/burst-pod-cpu", c.want.cpu)
	sameQuantity(t, b, "virtual-kubelet.cci.io/burst-pod-memory", c.want.memory)
	for k, v := range c.annotations {
		if b.Annotations[k] != v {
			t.Errorf("backend pod annotation %s = %q, want %q", k, b.Annotations[k], v)
		}
	}
	for _, w := range warnings(t, p) {
		if strings.Contains(w, "ValidatingAdmissionPolicy") {
			t.Errorf("refused by the backend plane on the way: %s", w)
		}
	}
}

// warnings are the messages of the pod's Warning events.
func warnings(t *testing.T, p *corev1.Pod) []string {
	t.Helper()
	var out []string
	for _, e := range eventsFor(t, p.Namespace, p.Name) {
		if e.Type == corev1.EventTypeWarning {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

// sameResources compares each backend container's requests and limits with want (JSON, "" for
// none), quantity by quantity; an absent resource must be absent.
func sameResources(t *testing.T, key string, got []corev1.Container, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d %s on the backend, want %d", len(got), key, len(want))
		return
	}
	for i, w := range want {
		var r corev1.ResourceRequirements
		if w != "" {
			if err := json.Unmarshal([]byte(w), &r); err != nil {
				t.Fatalf("%s[%d] want %s: %v", key, i, w, err)
			}
		}
		have := got[i].Resources
		if !equalResources(have.Requests, r.Requests) || !equalResources(have.Limits, r.Limits) {
			text, _ := json.Marshal(have)
			t.Errorf("%s[%d] %s on the backend: %s, want %s", key, i, got[i].Name, text, w)
		}
	}
}

// sameQuantity compares the backend pod's annotation key, a quantity, with want.
func sameQuantity(t *testing.T, b *corev1.Pod, key, want string) {
	t.Helper()
	got, err := resource.ParseQuantity(b.Annotations[key])
	if err != nil || got.Cmp(resource.MustParse(want)) != 0 {
		t.Errorf("backend pod annotation %s = %q, want %s", key, b.Annotations[key], want)
	}
}
