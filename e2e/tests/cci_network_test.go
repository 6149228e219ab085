package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"

	"burstlet/e2e/testbed"
)

// The Network burstlet makes in the backend namespace (provider.cci.network.name's default).
const backendNetworkName = "burstlet-network"

// backendNetworks is the dynamic client of the backend plane's Networks in ns; the test is
// skipped when the run's backend plane is not in CCI mode (BURSTLET_TESTBED_BACKEND=plain).
func backendNetworks(t *testing.T, ns string) dynamic.ResourceInterface {
	t.Helper()
	if env.tb.Backend.CCI == nil {
		t.Skip("the backend plane is not in CCI mode (BURSTLET_TESTBED_BACKEND=plain)")
	}
	rc, err := env.tb.Backend.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return dyn.Resource(testbed.NetworkGVR).Namespace(ns)
}

// networkIn returns the backend namespace's Network (an error while there is none).
func networkIn(networks dynamic.ResourceInterface) (*unstructured.Unstructured, error) {
	return networks.Get(context.Background(), backendNetworkName, metav1.GetOptions{})
}

// waitNetworkState waits until the Network is in state and returns it.
func waitNetworkState(t *testing.T, networks dynamic.ResourceInterface, state string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	var net *unstructured.Unstructured
	eventually(t, timeout, "backend Network "+state, func() error {
		var err error
		if net, err = networkIn(networks); err != nil {
			return err
		}
		if got := testbed.NetworkState(net); got != state {
			return fmt.Errorf("Network is %q", got)
		}
		return nil
	})
	return net
}

// nodeEvents are the events recorded on the node, as "<type> <reason>: <message>".
func nodeEvents(t *testing.T, node string) []string {
	t.Helper()
	list, err := env.cluster.CoreV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", node).String()})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Type+" "+e.Reason+": "+e.Message)
	}
	return out
}

// waitNodeEvent waits for a node event starting with prefix and containing text.
func waitNodeEvent(t *testing.T, node, prefix, text string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "node event "+prefix, func() error {
		events := nodeEvents(t, node)
		for _, e := range events {
			if strings.HasPrefix(e, prefix) && strings.Contains(e, text) {
				return nil
			}
		}
		return fmt.Errorf("node events: %q", events)
	})
}

// waitNetworkNotActiveOnNode waits until the node's ProviderUnavailable condition is True with
// reason BackendNetworkNotActive and a message containing text, and /readyz says the same.
func waitNetworkNotActiveOnNode(t *testing.T, d *cciDaemon, text string) {
	t.Helper()
	eventually(t, 60*time.Second, "ProviderUnavailable BackendNetworkNotActive on the node", func() error {
		node, err := env.cluster.CoreV1().Nodes().Get(context.Background(), d.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := nodeCondition(node, providerUnavailable)
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "BackendNetworkNotActive" ||
			!strings.Contains(c.Message, text) {
			return fmt.Errorf("ProviderUnavailable condition %+v", c)
		}
		return nil
	})
	eventually(t, 30*time.Second, "/readyz naming the Network", func() error {
		code, body := d.readyz()
		if code != http.StatusServiceUnavailable || !strings.Contains(body, backendNetworkName) ||
			!strings.Contains(body, text) {
			return fmt.Errorf("/readyz %d: %s", code, body)
		}
		return nil
	})
}

// createBurstPod creates a pod for the daemon's node that CCI accepts after normalization.
func createBurstPod(t *testing.T, d *cciDaemon, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := env.cluster.CoreV1().Pods(ns).Create(context.Background(),
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cciPodSpec(d.daemon)}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A Network CCI is slow to activate: burstlet registers its node but reports the Network (node
// condition, /readyz, after activeTimeout a Warning event), sends no pod to the backend while it
// is not Active, and starts the pod scheduled meanwhile once it is.
func TestCciNetworkSlowHoldsPodsUntilActive(t *testing.T) {
	d := startCciDaemon(t, withSubnet(cciSlowSubnet), withActiveTimeout("5s"), withoutWaiting())
	bns := d.backendNamespace()
	networks := backendNetworks(t, bns)
	ns := namespace(t, env.cluster)
	started := time.Now()

	waitNetworkState(t, networks, testbed.NetworkInitializing, 60*time.Second)
	waitNetworkNotActiveOnNode(t, d, "is Initializing")
	createBurstPod(t, d, ns, "early")

	// Until the Network is Active no backend pod exists. (Pods are read before the Network:
	// Active is final, so a pod seen means the Network read after it is Active.)
	sawActive := false
	for !sawActive && time.Since(started) < 2*cciSlowDelay {
		pods := backendPods(t, bns)
		net, err := networkIn(networks)
		if err != nil {
			t.Fatal(err)
		}
		sawActive = testbed.NetworkState(net) == testbed.NetworkActive
		if len(pods) > 0 && !sawActive {
			t.Fatalf("backend pod %s exists while the Network is %q", pods[0].Name, testbed.NetworkState(net))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawActive {
		t.Fatalf("the slow Network is not Active after %v", 2*cciSlowDelay)
	}
	t.Logf("Network Active after %v", time.Since(started).Round(time.Second))
	waitNodeEvent(t, d.node, "Warning BackendNetworkNotActive", "not Active after 5s", 10*time.Second)

	waitRunning(t, ns, "early", d.node)
	waitNodeEvent(t, d.node, "Normal BackendNetworkActive", backendNetworkName, 30*time.Second)
	d.waitReady(30 * time.Second)
	node, err := env.cluster.CoreV1().Nodes().Get(context.Background(), d.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := nodeCondition(node, providerUnavailable); c != nil && c.Status == corev1.ConditionTrue {
		t.Errorf("ProviderUnavailable still True once the Network is Active: %s: %s", c.Reason, c.Message)
	}
}

// A Network CCI marks Failed is reported at once (node condition, /readyz, one Warning event) and
// no pod goes to the backend; burstlet keeps running, waiting for the operator.
func TestCciNetworkFailedIsReportedAndHoldsPods(t *testing.T) {
	d := startCciDaemon(t, withSubnet(cciBadSubnet), withoutWaiting())
	bns := d.backendNamespace()
	networks := backendNetworks(t, bns)
	ns := namespace(t, env.cluster)

	waitNetworkState(t, networks, testbed.NetworkFailed, 60*time.Second)
	waitNetworkNotActiveOnNode(t, d, "is Failed")
	waitNodeEvent(t, d.node, "Warning BackendNetworkNotActive", "is Failed", 30*time.Second)
	createBurstPod(t, d, ns, "held")
	consistently(t, 8*time.Second, "no backend pod while the Network is Failed", func() error {
		if pods := backendPods(t, bns); len(pods) > 0 {
			return fmt.Errorf("backend pod %s exists", pods[0].Name)
		}
		if !d.running() {
			return fmt.Errorf("burstlet exited:\n%s", d.output())
		}
		p, err := env.cluster.CoreV1().Pods(ns).Get(context.Background(), "held", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodPending {
			return fmt.Errorf("pod is %s, want Pending", p.Status.Phase)
		}
		return nil
	})
	if n := strings.Count(strings.Join(nodeEvents(t, d.node), "\n"), "Warning BackendNetworkNotActive"); n != 1 {
		t.Errorf("%d Warning BackendNetworkNotActive events, want 1: %q", n, nodeEvents(t, d.node))
	}
}

// A restarted burstlet adopts its Network (the same object, not a second one); a Network deleted
// under it is made again; `burstlet cleanup` leaves neither the Network nor the namespace.
func TestCciNetworkAdoptedOnRestartAndMadeAgainWhenDeleted(t *testing.T) {
	d := startCciDaemon(t)
	bns := d.backendNamespace()
	networks := backendNetworks(t, bns)
	ns := namespace(t, env.cluster)
	ctx := context.Background()

	first := waitNetworkState(t, networks, testbed.NetworkActive, 30*time.Second)
	createBurstPod(t, d, ns, "before")
	waitRunning(t, ns, "before", d.node)

	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	d.start()
	d.waitReady(60 * time.Second)
	again := waitNetworkState(t, networks, testbed.NetworkActive, 30*time.Second)
	if again.GetUID() != first.GetUID() {
		t.Errorf("after a restart the Network is %s, want the adopted %s", again.GetUID(), first.GetUID())
	}
	if list, err := networks.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 1 {
		t.Errorf("Networks after a restart: %v, %v", list, err)
	}

	if err := networks.Delete(ctx, backendNetworkName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the deleted Network made again and Active", func() error {
		net, err := networkIn(networks)
		if err != nil {
			return err
		}
		if net.GetUID() == first.GetUID() {
			return fmt.Errorf("still the deleted one")
		}
		if s := testbed.NetworkState(net); s != testbed.NetworkActive {
			return fmt.Errorf("new Network is %q", s)
		}
		return nil
	})
	createBurstPod(t, d, ns, "after")
	waitRunning(t, ns, "after", d.node)

	// Cleanup: the pods' source goes first (cleanup refuses nothing, but a real operator
	// uninstalls after the workloads), then nothing of burstlet's stays on the backend.
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out, err := d.uninstall(); err != nil {
		t.Fatalf("burstlet cleanup: %v\n%s", err, out)
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("backend namespace %s after cleanup: %v", bns, err)
	}
	if list, err := networks.List(ctx, metav1.ListOptions{}); err == nil && len(list.Items) > 0 {
		t.Errorf("%d Networks left after cleanup", len(list.Items))
	}
}

// A Network of the backend namespace's name that burstlet did not make is never used or changed:
// burstlet stops with a reason naming it, as for a foreign namespace.
func TestCciForeignNetworkIsRefused(t *testing.T) {
	id := fmt.Sprintf("e2e%d", time.Now().UnixNano()%10000000)
	bns := "cce-burst-" + id
	networks := backendNetworks(t, bns)
	ctx := context.Background()
	// The namespace is burstlet's (as a previous run left it); the Network is someone else's.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: bns,
		Labels:      map[string]string{"burstlet.io/managed-by": "burstlet", "burstlet.io/cluster-id": id},
		Annotations: map[string]string{testbed.CCIFlavorAnnotation: testbed.CCIFlavorGeneral}}}
	if _, err := env.backend.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign, err := networks.Create(ctx, testbed.NewNetwork(backendNetworkName, cciGoodSubnet), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	d := startCciDaemon(t, withClusterID(id), withoutWaiting())
	if err := d.waitExit(60 * time.Second); err == nil {
		t.Fatalf("burstlet exited 0 with a foreign Network:\n%s", d.output())
	}
	out := d.output()
	if !strings.Contains(out, "NetworkNotOwned") || !strings.Contains(out, "burstlet only uses a Network it created") {
		t.Errorf("burstlet's output does not name the foreign Network:\n%s", out)
	}
	net, err := networkIn(networks)
	if err != nil || net.GetUID() != foreign.GetUID() || len(net.GetLabels()) != 0 {
		t.Errorf("the foreign Network was changed: %v %v", net, err)
	}
	if pods := backendPods(t, bns); len(pods) > 0 {
		t.Errorf("backend pod %s in a namespace whose Network is foreign", pods[0].Name)
	}
}

// With provider.cci.api: kubernetes (a plain Kubernetes backend) no Network is made and pods run.
func TestCciPlainBackendMakesNoNetwork(t *testing.T) {
	d := startCciDaemon(t, withKubernetesAPI())
	bns := d.backendNamespace()
	networks := backendNetworks(t, bns)
	ns := namespace(t, env.cluster)
	createBurstPod(t, d, ns, "plain")
	waitRunning(t, ns, "plain", d.node)
	list, err := networks.List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("%d Networks in the plain backend's namespace, want none", len(list.Items))
	}
}

// Bad network settings stop burstlet at start with one line per bad key, before anything is made
// on the backend.
func TestCciNetworkSettingsCheckedAtStart(t *testing.T) {
	id := fmt.Sprintf("e2e%d", time.Now().UnixNano()%10000000)
	config := filepath.Join(t.TempDir(), "burstlet.yaml")
	body := fmt.Sprintf(`provider:
  name: cci
  cci:
    kubeconfig: %s
    clusterID: %s
    api: cci
    network:
      vpcID: vpc-1
      subnetID: %s
      networkID: %s
      securityGroupID: 0c0ffee0-5b1e-4a8e-9d6f-0000000056a0
      availabilityZone: testbed-1a
      cidr: 10.247.8.0/22
      domainID: not-an-account
      projectID: fedcba9876543210fedcba9876543210
`, env.tb.Backend.BurstletKubeconfig, id, cciGoodSubnet, cciGoodSubnet)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "--config", config)
	if err := d.waitExit(30 * time.Second); err == nil {
		t.Fatalf("burstlet exited 0 with bad network settings:\n%s", d.output())
	}
	out := d.output()
	for _, want := range []string{
		`provider.cci.network.vpcID: "vpc-1" is not an ID`,
		"provider.cci.network.cidr: 10.247.8.0/22 overlaps 10.247.0.0/16, CCI's Service range",
		`provider.cci.network.domainID: "not-an-account" is not an ID`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, good := range []string{"subnetID", "networkID", "securityGroupID", "availabilityZone", "projectID"} {
		if strings.Contains(out, "provider.cci.network."+good+":") {
			t.Errorf("a good key is reported: %s\n%s", good, out)
		}
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(context.Background(), "cce-burst-"+id, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("backend namespace made despite bad settings: %v", err)
	}
}
