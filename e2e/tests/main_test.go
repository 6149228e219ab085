// Package tests holds burstlet's end-to-end tests. One test bed (two real control planes)
// serves the whole `go test` run: TestMain starts it once, each test works in namespaces of
// its own, and the test bed is stopped when the run ends, fails, or is interrupted.
package tests

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"burstlet/e2e/testbed"
)

// env is the shared test bed of this run.
var env struct {
	tb      *testbed.Testbed
	cluster *kubernetes.Clientset
	backend *kubernetes.Clientset
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cfg := testbed.DefaultConfig(os.Getenv("BURSTLET_BIN_DIR"), os.Getenv("BURSTLET_TESTBED_STATE"))
	if err := cfg.WithRepoDefaults(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if os.Getenv("BURSTLET_TESTBED_STATE") == "" {
		// Apart from the interactive test bed of `make testbed-up`.
		cfg.StateDir = filepath.Join(filepath.Dir(cfg.StateDir), "e2e")
	}
	cfg.KillWithParent = true
	// metrics-server on both planes (kubectl top, metrics_test.go): about no start time, a scrape
	// per plane every testbed.MetricsResolution.
	cfg.Metrics = true
	// The backend plane refuses what CCI refuses (testbed.BackendCCI) unless
	// BURSTLET_TESTBED_BACKEND=plain.
	cfg.Backend = testbed.BackendCCI
	if b := os.Getenv("BURSTLET_TESTBED_BACKEND"); b != "" {
		cfg.Backend = b
	}
	cfg.CCI = cciTestOptions()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb, err := testbed.Up(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: testbed up:", err)
		return 1
	}
	fmt.Printf("e2e: testbed up in %.1fs\n", tb.StartDur.Seconds())
	env.tb = tb
	defer tb.Stop()

	// Interrupted runs still stop the test bed.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: stopping testbed\n", s)
		tb.Stop()
		os.Exit(130)
	}()

	if env.cluster, err = tb.Cluster.Clientset(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if env.backend, err = tb.Backend.Clientset(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// cciTestOptions: Networks on cciBadSubnet fail, on cciSlowSubnet they take cciSlowDelay.
func cciTestOptions() testbed.CCIOptions {
	o := testbed.DefaultCCIOptions()
	o.FailedSubnets = []string{cciBadSubnet}
	o.SlowSubnets = map[string]time.Duration{cciSlowSubnet: cciSlowDelay}
	return o
}

// namespace creates a namespace for one test on the given plane and deletes it afterwards.
func namespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	return labelledNamespace(t, cs, nil)
}

// plainNamespace is a namespace on the backend plane that a CCI-mode plane treats as a plain
// Kubernetes backend (its policies do not apply): for pods the tests create straight on the fleet.
func plainNamespace(t *testing.T) string {
	t.Helper()
	return labelledNamespace(t, env.backend, map[string]string{testbed.PlainNamespaceLabel: testbed.PlainNamespaceValue})
}

func labelledNamespace(t *testing.T, cs kubernetes.Interface, labels map[string]string) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = fmt.Sprintf("%s-%d", strings.Trim(name, "-"), time.Now().UnixNano()%100000)
	ctx := context.Background()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// Pods are admitted only once the namespace's default ServiceAccount exists.
	eventually(t, 30*time.Second, "default ServiceAccount in "+name, func() error {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return name
}

// eventually polls check until it returns nil or timeout passes, then fails the test with
// the last error.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = check(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
