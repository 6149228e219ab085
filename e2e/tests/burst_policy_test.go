package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

const burstLabel = "virtual-kubelet.io/burst-to-cci"

// startPolicyDaemon runs burstlet (fake provider) with its admission webhook on a free loopback
// port, and waits until the webhook is registered with the cluster. The registration is removed
// when the test ends (burstlet leaves it: failurePolicy Ignore).
func startPolicyDaemon(t *testing.T) *daemon {
	t.Helper()
	config := filepath.Join(t.TempDir(), "burstlet.yaml")
	body := fmt.Sprintf("admission:\n  listen: 127.0.0.1:%d\n  hosts: [127.0.0.1]\n", freePort(t))
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", config)
	waitWebhookRegistered(t, d.node)
	return d
}

// waitWebhookRegistered waits until node's burstlet registered its webhook, and removes the
// registration when the test ends (burstlet leaves it: failurePolicy Ignore).
func waitWebhookRegistered(t *testing.T, node string) {
	t.Helper()
	name := "burstlet-" + node
	t.Cleanup(func() {
		_ = env.cluster.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name,
			metav1.DeleteOptions{})
	})
	eventually(t, 30*time.Second, "webhook registered", func() error {
		c, err := env.cluster.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), name,
			metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(c.Webhooks) != 1 || c.Webhooks[0].FailurePolicy == nil || *c.Webhooks[0].FailurePolicy != "Ignore" {
			return fmt.Errorf("webhooks %+v", c.Webhooks)
		}
		return nil
	})
}

// labelledDeployment is a Deployment of n pods asking cpu each, labelled with the burst policy
// `value` on the Deployment only (not its pod template), and with no selector or toleration
// for the virtual node.
func labelledDeployment(t *testing.T, ns, name, value string, n int32, cpu string) {
	t.Helper()
	labels := map[string]string{"app": name}
	list := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{burstLabel: value}},
		Spec: appsv1.DeploymentSpec{Replicas: int32p(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1",
					Resources: corev1.ResourceRequirements{Requests: list}}}}}}}
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// placement waits until the Deployment's n pods are all scheduled (or, with pending > 0, that
// many stay Pending) and returns how many run on the virtual node and elsewhere.
func placement(t *testing.T, ns, app, node string, n, pending int) (virtual, local int) {
	t.Helper()
	eventually(t, 90*time.Second, fmt.Sprintf("%s: %d pods, %d unscheduled", app, n, pending), func() error {
		pods := podsOf(t, ns, "app="+app)
		virtual, local = 0, 0
		unscheduled := 0
		for _, p := range pods {
			switch p.Spec.NodeName {
			case "":
				unscheduled++
			case node:
				virtual++
			default:
				local++
			}
		}
		if len(pods) != n || unscheduled != pending {
			return fmt.Errorf("%d pods: %d on the virtual node, %d local, %d unscheduled", len(pods), virtual, local,
				unscheduled)
		}
		return nil
	})
	return virtual, local
}

// The burst-to-cci label on a Deployment places its pods, through burstlet's webhook and the
// cluster's real scheduler: enforce on the virtual node, off never there, localPrefer and auto
// there only for what the workers (2 × 4 CPU) cannot take; each pod names the rule that placed
// it; an unknown value is denied with the allowed ones.
func TestBurstPolicyLabelPlacesPods(t *testing.T) {
	d := startPolicyDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()

	labelledDeployment(t, ns, "always", "enforce", 3, "100m")
	if v, l := placement(t, ns, "always", d.node, 3, 0); v != 3 || l != 0 {
		t.Errorf("enforce: %d on the virtual node, %d local; want 3, 0", v, l)
	}
	for _, p := range podsOf(t, ns, "app=always") {
		if got := p.Annotations["burstlet.io/burst-rule"]; !strings.Contains(got, "on Deployment always") {
			t.Errorf("%s: burst-rule annotation %q", p.Name, got)
		}
	}

	// localPrefer: 12 × 1 CPU on two workers of 4 CPU each fill the workers first.
	free := workerFreeCPU(t)
	labelledDeployment(t, ns, "peak", "localPrefer", 12, "1")
	v, l := placement(t, ns, "peak", d.node, 12, 0)
	if l != free || v != 12-free {
		t.Errorf("localPrefer: %d local, %d on the virtual node; want %d and %d (free worker CPUs: %d)", l, v, free,
			12-free, free)
	}
	if err := env.cluster.AppsV1().Deployments(ns).Delete(ctx, "peak", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "peak pods gone", func() error {
		if n := len(podsOf(t, ns, "app=peak")); n > 0 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})

	// auto: the scheduler decides, ordinary nodes ranked first (the virtual node's
	// PreferNoSchedule taint outweighs spreading and least-allocated): the workers fill first.
	free = workerFreeCPU(t)
	labelledDeployment(t, ns, "spread", "auto", int32(free+4), "1")
	v, l = placement(t, ns, "spread", d.node, free+4, 0)
	t.Logf("auto: %d local, %d on the virtual node (free worker CPUs: %d)", l, v, free)
	if l != free || v != 4 {
		t.Errorf("auto: %d local, %d on the virtual node; want %d and 4", l, v, free)
	}
	// Scaled in by as many as burst: the burst pods go (their deletion cost is lower).
	eventually(t, 60*time.Second, "burst pods carry their deletion cost", func() error {
		for _, p := range podsOf(t, ns, "app=spread") {
			if p.Spec.NodeName == d.node && p.Annotations["controller.kubernetes.io/pod-deletion-cost"] != "-100" {
				return fmt.Errorf("%s: annotations %v", p.Name, p.Annotations)
			}
		}
		return nil
	})
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, l)
	if _, err := env.cluster.AppsV1().Deployments(ns).Patch(ctx, "spread", types.MergePatchType, []byte(patch),
		metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "only the local pods left", func() error {
		pods := podsOf(t, ns, "app=spread")
		live := 0
		for _, p := range pods {
			if p.DeletionTimestamp != nil {
				continue
			}
			live++
			if p.Spec.NodeName == d.node {
				return fmt.Errorf("%s kept on the virtual node", p.Name)
			}
		}
		if live != l {
			return fmt.Errorf("%d live pods", live)
		}
		return nil
	})
	if err := env.cluster.AppsV1().Deployments(ns).Delete(ctx, "spread", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "spread pods gone", func() error {
		if n := len(podsOf(t, ns, "app=spread")); n > 0 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})

	// off: what the workers cannot take stays Pending.
	free = workerFreeCPU(t)
	labelledDeployment(t, ns, "never", "off", int32(free+2), "1")
	if v, _ := placement(t, ns, "never", d.node, free+2, 2); v != 0 {
		t.Errorf("off: %d pods on the virtual node", v)
	}

	// An unknown value: the pod is denied, naming the allowed values.
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bad", Labels: map[string]string{burstLabel: "always"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1"}}}}
	_, err := env.cluster.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "is not one of auto, localPrefer, enforce, off") {
		t.Errorf("a pod with burst-to-cci=always: %v", err)
	}
}

// workerFreeCPU is how many whole CPUs the cluster's kwok workers have left for new pods, once
// what earlier tests left is gone (no namespace terminating, no pod being deleted), so that the
// count does not change under the caller.
func workerFreeCPU(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	eventually(t, 120*time.Second, "earlier tests' pods gone from the workers", func() error {
		nss, err := env.cluster.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		terminating := map[string]bool{}
		for _, n := range nss.Items {
			terminating[n.Name] = n.Status.Phase == corev1.NamespaceTerminating
		}
		pods, err := env.cluster.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if !strings.HasPrefix(p.Spec.NodeName, "kwok-") && p.Spec.NodeName != "" {
				continue // the workers only: pods of a stopped virtual node may never go
			}
			if p.Spec.NodeName != "" && (p.DeletionTimestamp != nil || terminating[p.Namespace]) {
				return fmt.Errorf("pod %s/%s on %s going", p.Namespace, p.Name, p.Spec.NodeName)
			}
		}
		return nil
	})
	nodes, err := env.cluster.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/worker"})
	if err != nil {
		t.Fatal(err)
	}
	free := 0
	for _, n := range nodes.Items {
		pods, err := env.cluster.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
		if err != nil {
			t.Fatal(err)
		}
		left := n.Status.Allocatable.Cpu().MilliValue()
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			for _, c := range p.Spec.Containers {
				left -= c.Resources.Requests.Cpu().MilliValue()
			}
		}
		free += int(left / 1000)
	}
	return free
}

// The label on a StatefulSet, a Job and a CronJob (not on their pod templates) places their pods
// too; a DaemonSet that tolerates every taint gets no pod on the virtual node, and none is
// created there and failed over and over.
func TestBurstPolicyWorkloadKindsAndDaemonSets(t *testing.T) {
	d := startPolicyDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	enforce := map[string]string{burstLabel: "enforce"}
	podSpec := func(app string, restart corev1.RestartPolicy) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{RestartPolicy: restart,
				Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1"}}}}
	}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: enforce},
		Spec: appsv1.StatefulSetSpec{Replicas: int32p(2), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: podSpec("db", corev1.RestartPolicyAlways)}}
	if _, err := env.cluster.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once", Labels: enforce},
		Spec: batchv1.JobSpec{Template: podSpec("once", corev1.RestartPolicyNever)}}
	if _, err := env.cluster.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick", Labels: enforce},
		Spec: batchv1.CronJobSpec{Schedule: "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podSpec("tick", corev1.RestartPolicyNever)}}}}
	if _, err := env.cluster.BatchV1().CronJobs(ns).Create(ctx, cron, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tolerateAll := podSpec("agent", corev1.RestartPolicyAlways)
	tolerateAll.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: tolerateAll}}
	if _, err := env.cluster.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, app := range []string{"db", "once"} {
		eventually(t, 60*time.Second, app+" pods on the virtual node", func() error {
			pods := podsOf(t, ns, "app="+app)
			if len(pods) == 0 {
				return fmt.Errorf("no pods")
			}
			for _, p := range pods {
				if p.Spec.NodeName != d.node {
					return fmt.Errorf("%s on %q", p.Name, p.Spec.NodeName)
				}
			}
			return nil
		})
	}
	// The CronJob's first Job starts within its minute.
	eventually(t, 90*time.Second, "a CronJob pod on the virtual node", func() error {
		pods := podsOf(t, ns, "app=tick")
		if len(pods) == 0 {
			return fmt.Errorf("no pods yet")
		}
		if pods[0].Spec.NodeName != d.node {
			return fmt.Errorf("%s on %q", pods[0].Name, pods[0].Spec.NodeName)
		}
		return nil
	})
	// The DaemonSet runs on the workers and never on the virtual node.
	eventually(t, 60*time.Second, "agent pods on the workers", func() error {
		if n := len(podsOf(t, ns, "app=agent")); n < 2 {
			return fmt.Errorf("%d agent pods", n)
		}
		return nil
	})
	consistently(t, 2*time.Minute, "no agent pod on the virtual node", func() error {
		for _, p := range podsOf(t, ns, "app=agent") {
			if p.Spec.NodeName == d.node {
				return fmt.Errorf("%s on the virtual node", p.Name)
			}
		}
		return nil
	})
	events, err := env.cluster.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.InvolvedObject.Kind == "DaemonSet" && (e.Reason == "FailedDaemonPod" || e.Reason == "SuccessfulDelete") {
			t.Errorf("DaemonSet churn: %s %s", e.Reason, e.Message)
		}
	}
}

// With the cci provider the webhook asks the provider's own rules: an enforce pod CCI cannot run
// (hostNetwork) is denied naming the rule; an auto one is admitted unchanged and stays local.
func TestBurstPolicyEnforceRefusesWhatTheBackendCannotRun(t *testing.T) {
	d := startCciDaemon(t, withAdmission())
	waitWebhookRegistered(t, d.node)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	hostNet := func(name, value string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{burstLabel: value}},
			Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}}}}}
	}
	_, err := env.cluster.CoreV1().Pods(ns).Create(ctx, hostNet("forced", "enforce"), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "is enforce, but the backend cannot run this pod") ||
		!strings.Contains(err.Error(), "hostNetwork") {
		t.Errorf("enforce hostNetwork pod: %v", err)
	}
	p, err := env.cluster.CoreV1().Pods(ns).Create(ctx, hostNet("maybe", "auto"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tol := range p.Spec.Tolerations {
		if tol.Key == "virtual-kubelet.io/provider" {
			t.Errorf("auto hostNetwork pod made eligible: %+v", p.Spec.Tolerations)
		}
	}
	// Uninstalled: `burstlet cleanup` removes the registration and the certificate Secret with
	// the backend namespace.
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out, err := cleanup(d.config, "--kubeconfig", env.tb.Cluster.BurstletKubeconfig, "--node-name", d.node); err != nil ||
		!strings.Contains(out, "webhook registration burstlet-"+d.node+" is gone") {
		t.Fatalf("burstlet cleanup: %v\n%s", err, out)
	}
	if _, err := env.cluster.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "burstlet-"+d.node,
		metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("webhook registration after cleanup: %v", err)
	}
	// And the Secret of the webhook's own CA and certificate.
	secret := "burstlet-webhook-" + d.node
	if _, err := env.cluster.CoreV1().Secrets("kube-system").Get(ctx, secret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("certificate Secret after cleanup: %v", err)
	}
}

// servedCertificate is the certificate burstlet's webhook listener presents at addr.
func servedCertificate(addr string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true}) // #nosec G402 -- checked against the caBundle below
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// Without certificate files the webhook's CA and serving certificate live in the Secret
// burstlet-webhook-<node>: the serving certificate (certValidity 30s) is renewed before it
// expires and served without a restart while pods keep being admitted and patched, the
// registration's caBundle stays as it is, also across a restart, and no key reaches the log.
func TestBurstPolicyWebhookCertificateKeptAndRotated(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	config := filepath.Join(t.TempDir(), "burstlet.yaml")
	body := fmt.Sprintf("admission:\n  listen: %s\n  hosts: [127.0.0.1]\n  namespace: kube-system\n"+
		"  certValidity: 30s\n", addr)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", config)
	waitWebhookRegistered(t, d.node)
	ctx := context.Background()
	secretName := "burstlet-webhook-" + d.node
	t.Cleanup(func() {
		_ = env.cluster.CoreV1().Secrets("kube-system").Delete(context.Background(), secretName, metav1.DeleteOptions{})
	})
	secret, err := env.cluster.CoreV1().Secrets("kube-system").Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Type != corev1.SecretTypeTLS || secret.Labels["burstlet.io/managed-by"] != "burstlet" ||
		len(secret.Data["ca.crt"]) == 0 || len(secret.Data["ca.key"]) == 0 {
		t.Fatalf("secret: type %s, labels %v, keys %d", secret.Type, secret.Labels, len(secret.Data))
	}
	registration := func() *admissionregistrationv1.MutatingWebhookConfiguration {
		c, err := env.cluster.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "burstlet-"+d.node,
			metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := registration()
	caBundle := first.Webhooks[0].ClientConfig.CABundle
	if string(caBundle) != string(secret.Data["ca.crt"]) {
		t.Fatalf("registered caBundle is not the Secret's ca.crt")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatal("caBundle holds no certificate")
	}
	trusted := func() (*x509.Certificate, error) {
		cert, err := servedCertificate(addr)
		if err != nil {
			return nil, err
		}
		_, err = cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"})
		return cert, err
	}
	ns := namespace(t, env.cluster)
	admitted := 0
	admit := func() {
		t.Helper()
		admitted++
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", admitted),
			Labels: map[string]string{burstLabel: "enforce"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m")}}}}}}
		p, err := env.cluster.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Annotations["burstlet.io/burst-rule"] == "" {
			t.Errorf("pod %s admitted without the webhook's patch: annotations %v", p.Name, p.Annotations)
		}
	}
	cert, err := trusted()
	if err != nil {
		t.Fatalf("served certificate: %v", err)
	}
	admit()

	// Renewed with a third of its 30 s left, twice, under the same CA; pods keep being patched.
	for round := 0; round < 2; round++ {
		before := cert.SerialNumber
		eventually(t, 60*time.Second, "a renewed serving certificate", func() error {
			c, err := trusted()
			if err != nil {
				return err
			}
			if c.SerialNumber.Cmp(before) == 0 {
				return fmt.Errorf("still serial %x (not after %v)", before, c.NotAfter)
			}
			cert = c
			return nil
		})
		t.Logf("serving certificate renewed: not after %v", cert.NotAfter)
		admit()
	}
	if rv := registration().ResourceVersion; rv != first.ResourceVersion {
		t.Errorf("registration changed by rotating the serving certificate: %s -> %s", first.ResourceVersion, rv)
	}

	// A restart serves a certificate from the same CA and leaves the registration as it was.
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	d.start()
	d.waitReady(60 * time.Second)
	eventually(t, 30*time.Second, "the webhook listening again", func() error {
		_, err := trusted()
		return err
	})
	admit()
	if c := registration(); c.ResourceVersion != first.ResourceVersion ||
		string(c.Webhooks[0].ClientConfig.CABundle) != string(caBundle) {
		t.Errorf("registration changed across a restart: resourceVersion %s -> %s", first.ResourceVersion,
			c.ResourceVersion)
	}

	logs, err := os.ReadFile(d.logs)
	if err != nil {
		t.Fatal(err)
	}
	key := string(secret.Data["tls.key"])
	caKey := string(secret.Data["ca.key"])
	for _, k := range []string{"PRIVATE KEY", keyLine(key), keyLine(caKey)} {
		if k != "" && strings.Contains(string(logs), k) {
			t.Errorf("the log holds key material (%q...)", k[:min(len(k), 12)])
		}
	}
}

// keyLine is the first base64 line of a PEM key's body.
func keyLine(pem string) string {
	lines := strings.Split(pem, "\n")
	if len(lines) < 2 {
		return ""
	}
	return lines[1]
}

var burstProfiles = schema.GroupVersionResource{Group: "burstlet.io", Version: "v1alpha1", Resource: "burstprofiles"}

// applyBurstProfile creates or replaces the BurstProfile `name` in ns with `spec`, and waits
// until burstlet's webhook applies it (a dry-run pod with `labels` comes back labelled with it;
// after a replace that shows only that the profile is known, not yet its new spec).
func applyBurstProfile(t *testing.T, ns, name string, spec map[string]any, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	rc, err := env.tb.Cluster.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "burstlet.io/v1alpha1", "kind": "BurstProfile",
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec}}
	cur, err := dyn.Resource(burstProfiles).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = dyn.Resource(burstProfiles).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
	case err == nil:
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = dyn.Resource(burstProfiles).Namespace(ns).Update(ctx, obj, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "profile "+name+" applied by the webhook", func() error {
		probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1"}}}}
		out, err := env.cluster.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if out.Labels["burstlet.io/profile"] != name {
			return fmt.Errorf("dry-run pod labels %v", out.Labels)
		}
		return nil
	})
}

// A BurstProfile places the pods it selects (no label anywhere): local.maxNum 3 keeps three on
// the workers and sends the next ones to the virtual node, burst.maxNum 2 holds the rest
// Pending behind a scheduling gate until the cap is raised; the profile's scale-down order makes
// the burst pods go first when the Deployment scales in. Under burst.maxNum alone, auto pods
// the workers cannot take burst only while the cap has room; the rest stay Pending locally.
func TestBurstPolicyProfiles(t *testing.T) {
	d := startPolicyDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	selector := map[string]any{"matchLabels": map[string]any{"app": "capped"}}
	applyBurstProfile(t, ns, "capped", map[string]any{"selector": selector, "strategy": "auto",
		"local": map[string]any{"maxNum": 3, "scaleDownPriority": 0},
		"burst": map[string]any{"maxNum": 2, "scaleDownPriority": 10}}, map[string]string{"app": "capped"})

	dep := func(name string, n int32, cpu string) {
		labels := map[string]string{"app": name}
		list := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Mi")}
		obj := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{Replicas: int32p(n),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.local/app:1",
						Resources: corev1.ResourceRequirements{Requests: list}}}}}}}
		if _, err := env.cluster.AppsV1().Deployments(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dep("capped", 6, "100m")
	v, l := placement(t, ns, "capped", d.node, 6, 1)
	if v != 2 || l != 3 {
		t.Errorf("local.maxNum 3, burst.maxNum 2: %d on the virtual node, %d local; want 2 and 3", v, l)
	}
	for _, p := range podsOf(t, ns, "app=capped") {
		if p.Labels["burstlet.io/profile"] != "capped" || !strings.Contains(p.Annotations["burstlet.io/burst-rule"], "profile capped") {
			t.Errorf("%s: labels %v, annotations %v", p.Name, p.Labels, p.Annotations)
		}
		if p.Spec.NodeName != "" {
			continue
		}
		gated := false
		for _, g := range p.Spec.SchedulingGates {
			gated = gated || g.Name == "burstlet.io/burst-capacity"
		}
		if !gated || p.Labels["burstlet.io/burst-slot"] != "burst" {
			t.Errorf("held pod %s: gates %v, labels %v", p.Name, p.Spec.SchedulingGates, p.Labels)
		}
	}
	// The held pod stays held (the grant loop runs every second).
	time.Sleep(3 * time.Second)
	placement(t, ns, "capped", d.node, 6, 1)

	// Raising burst.maxNum lets it go.
	applyBurstProfile(t, ns, "capped", map[string]any{"selector": selector, "strategy": "auto",
		"local": map[string]any{"maxNum": 3, "scaleDownPriority": 0},
		"burst": map[string]any{"maxNum": 3, "scaleDownPriority": 10}}, map[string]string{"app": "capped"})
	if v, l := placement(t, ns, "capped", d.node, 6, 0); v != 3 || l != 3 {
		t.Errorf("burst.maxNum raised to 3: %d on the virtual node, %d local; want 3 and 3", v, l)
	}
	eventually(t, 60*time.Second, "burst pods carry the profile's deletion cost", func() error {
		for _, p := range podsOf(t, ns, "app=capped") {
			want := "0"
			if p.Spec.NodeName == d.node {
				want = "-10"
			}
			if got := p.Annotations["controller.kubernetes.io/pod-deletion-cost"]; got != want {
				return fmt.Errorf("%s on %q: deletion cost %q, want %q", p.Name, p.Spec.NodeName, got, want)
			}
		}
		return nil
	})
	// Scaled in to 3: the three burst pods go.
	if _, err := env.cluster.AppsV1().Deployments(ns).Patch(ctx, "capped", types.MergePatchType,
		[]byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "only the local pods left", func() error {
		live := 0
		for _, p := range podsOf(t, ns, "app=capped") {
			if p.DeletionTimestamp != nil {
				continue
			}
			live++
			if p.Spec.NodeName == d.node {
				return fmt.Errorf("%s kept on the virtual node", p.Name)
			}
		}
		if live != 3 {
			return fmt.Errorf("%d live pods", live)
		}
		return nil
	})
	if err := env.cluster.AppsV1().Deployments(ns).Delete(ctx, "capped", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "capped pods gone", func() error {
		if n := len(podsOf(t, ns, "app=capped")); n > 0 {
			return fmt.Errorf("%d pods", n)
		}
		return nil
	})

	// burst.maxNum alone on auto pods of 1 CPU: the workers fill, two burst (granted once the
	// scheduler found no worker for them), the rest stay Pending and unschedulable.
	applyBurstProfile(t, ns, "overflow", map[string]any{
		"selector": map[string]any{"matchLabels": map[string]any{"app": "overflow"}}, "strategy": "auto",
		"burst": map[string]any{"maxNum": 2}}, map[string]string{"app": "overflow"})
	free := workerFreeCPU(t)
	dep("overflow", int32(free+3), "1")
	v, l = placement(t, ns, "overflow", d.node, free+3, 1)
	if v != 2 || l != free {
		t.Errorf("burst.maxNum 2: %d on the virtual node, %d local; want 2 and %d", v, l, free)
	}
	for _, p := range podsOf(t, ns, "app=overflow") {
		if p.Spec.NodeName == d.node && p.Labels["burstlet.io/burst-slot"] != "burst" {
			t.Errorf("%s on the virtual node with slot %q", p.Name, p.Labels["burstlet.io/burst-slot"])
		}
	}
}
