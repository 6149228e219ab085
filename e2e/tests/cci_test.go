package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"sigs.k8s.io/yaml"

	"burstlet/e2e/testbed"
)

// cciDaemon is burstlet with the backend provider pointed at the testbed's backend plane, in a
// backend namespace of its own.
type cciDaemon struct {
	*daemon
	clusterID string
	config    string
	// account is the CCI gateway account the daemon signs with ("" when it reaches the backend
	// plane with a kubeconfig: api kubernetes, or a plain backend plane).
	account string
}

func (c *cciDaemon) backendNamespace() string { return "cce-burst-" + c.clusterID }

// uninstall runs `burstlet cleanup` for this daemon's node: its backend objects go, and the
// backend namespace with them unless another node of the cluster ID still uses it.
func (c *cciDaemon) uninstall(extra ...string) (string, error) {
	return cleanup(c.config, append([]string{"--node-name", c.node}, extra...)...)
}

// copySelector selects burstlet's ConfigMap and Secret copies on the backend (each node's marker
// and node secrets carry no burstlet.io/node label).
const copySelector = "burstlet.io/managed-by=burstlet,burstlet.io/node"

// Subnets of the CCI-mode backend plane (TestMain configures its network controller): a Network
// on cciGoodSubnet turns Active after a second, on cciSlowSubnet after cciSlowDelay, and on
// cciBadSubnet it turns Failed. They are IDs as CCI gives them, so burstlet accepts them.
const (
	cciGoodSubnet = "0c0ffee0-5b1e-4a8e-9d6f-000000000001"
	cciSlowSubnet = "0c0ffee0-5b1e-4a8e-9d6f-000000000510"
	cciBadSubnet  = "0c0ffee0-5b1e-4a8e-9d6f-0000000000ba"
	cciSlowDelay  = 20 * time.Second
)

// cciOptions change what startCciDaemon configures.
type cciOptions struct {
	clusterID     string
	sweepInterval string
	// api is provider.cci.api: "cci" (the default: the Network on subnet) or "kubernetes" (a plain
	// backend: no Network, the backend namespace exempt from the plane's CCI policies).
	api           string
	subnet        string
	activeTimeout string
	// wait for /readyz (the default) or return once the process started.
	wait bool
	// account of the CCI gateway to sign with (api cci on a CCI-mode backend plane; "e2e" by
	// default); token authenticates with its X-Auth-Token instead of AK/SK.
	account string
	token   bool
	// noCleanup: the test runs `burstlet cleanup` itself.
	noCleanup bool
	// admission: serve the burst-policy webhook on a free loopback port.
	admission bool
	// kubelet: lines of the config file's kubeletApi section ("  key: value\n").
	kubelet string
	// config: YAML appended to the config file at its top level (sections of their own).
	config string
}

type cciOption func(*cciOptions)

// withClusterID shares the backend namespace of another daemon (a second virtual node of the
// same cluster).
func withClusterID(id string) cciOption { return func(o *cciOptions) { o.clusterID = id } }

// withSweepInterval sets provider.cci.sweepInterval ("1s" by default).
func withSweepInterval(d string) cciOption { return func(o *cciOptions) { o.sweepInterval = d } }

// withSubnet puts the Network on subnet (cciGoodSubnet by default).
func withSubnet(subnet string) cciOption { return func(o *cciOptions) { o.subnet = subnet } }

// withActiveTimeout sets provider.cci.network.activeTimeout.
func withActiveTimeout(d string) cciOption { return func(o *cciOptions) { o.activeTimeout = d } }

// withKubernetesAPI runs the provider with api: kubernetes against a plain backend namespace.
func withKubernetesAPI() cciOption { return func(o *cciOptions) { o.api = "kubernetes" } }

// withoutWaiting returns without waiting for /readyz (a daemon that is not ready, or exits).
func withoutWaiting() cciOption { return func(o *cciOptions) { o.wait = false } }

// withAccount signs with another account of the CCI gateway ("full": its namespace quota is used
// up).
func withAccount(name string) cciOption { return func(o *cciOptions) { o.account = name } }

// withAdmission serves the burst-policy webhook (admission.listen on a free loopback port).
func withAdmission() cciOption { return func(o *cciOptions) { o.admission = true } }

// withKubeletConfig adds lines to the kubeletApi section of the config file.
func withKubeletConfig(lines string) cciOption { return func(o *cciOptions) { o.kubelet += lines } }

// withConfig appends top-level sections to the config file (e.g. "network:\n  clusterDNS: [...]\n").
func withConfig(yaml string) cciOption { return func(o *cciOptions) { o.config += yaml } }

// withoutCleanup leaves `burstlet cleanup` to the test.
func withoutCleanup() cciOption { return func(o *cciOptions) { o.noCleanup = true } }

// withToken authenticates with the account's IAM token (X-Auth-Token) instead of AK/SK.
func withToken() cciOption { return func(o *cciOptions) { o.token = true } }

// cciBackendConnection is how a CCI-mode daemon reaches the backend: through the CCI gateway as
// CCI is reached (endpoint, CA, the account's AK/SK file or token file; the gateway answers
// /version as 1.19), or, on a plain backend plane, with burstlet's kubeconfig and the release
// fixed at 1.19.
func cciBackendConnection(t *testing.T, o cciOptions) string {
	t.Helper()
	gw := env.tb.Backend.CCIGateway
	if gw == nil {
		return fmt.Sprintf("    kubeconfig: %s\n    backendVersion: \"1.19\"\n", env.tb.Backend.BurstletKubeconfig)
	}
	for _, a := range gw.Accounts {
		if a.Name != o.account {
			continue
		}
		auth := "    akskFile: " + a.AKSKFile + "\n"
		if o.token {
			auth = "    tokenFile: " + a.TokenFile + "\n"
		}
		return fmt.Sprintf("    endpoint: %s\n    caFile: %s\n    projectID: fedcba9876543210fedcba9876543210\n%s",
			gw.URL, gw.CAFile, auth)
	}
	t.Fatalf("the CCI gateway has no account %q", o.account)
	return ""
}

// cciNetworkConfig is the provider.cci.network block for subnet: IDs in CCI's formats, the
// testbed's zone, a subnet clear of 10.247.0.0/16.
func cciNetworkConfig(subnet, activeTimeout string) string {
	body := fmt.Sprintf(`    network:
      vpcID: 0c0ffee0-5b1e-4a8e-9d6f-00000000a0c0
      subnetID: %s
      networkID: %s
      securityGroupID: 0c0ffee0-5b1e-4a8e-9d6f-0000000056a0
      availabilityZone: testbed-1a
      cidr: 192.168.0.0/24
      domainID: 0123456789abcdef0123456789abcdef
      projectID: fedcba9876543210fedcba9876543210
`, subnet, "1"+subnet[1:])
	if activeTimeout != "" {
		body += "      activeTimeout: " + activeTimeout + "\n"
	}
	return body
}

// startCciDaemon writes a config for the cci provider (a fresh cluster ID, so each test has its
// backend namespace, unless withClusterID) and starts burstlet with it, for a node of its own.
// In CCI mode (the default) the backend namespace gets its Network on cciGoodSubnet. When the
// test ends, `burstlet cleanup` removes the backend namespace and its Network.
func startCciDaemon(t *testing.T, options ...cciOption) *cciDaemon {
	t.Helper()
	o := cciOptions{clusterID: fmt.Sprintf("e2e%d", time.Now().UnixNano()%10000000), sweepInterval: "1s",
		api: "cci", subnet: cciGoodSubnet, wait: true, account: "e2e"}
	for _, opt := range options {
		opt(&o)
	}
	id := o.clusterID
	config := filepath.Join(t.TempDir(), "burstlet.yaml")
	body := fmt.Sprintf(`provider:
  name: cci
  cci:
    clusterID: %s
    sweepInterval: %s
    api: %s
`, id, o.sweepInterval, o.api)
	account := ""
	if o.api == "cci" {
		body += cciBackendConnection(t, o)
		body += cciNetworkConfig(o.subnet, o.activeTimeout)
		if env.tb.Backend.CCIGateway != nil {
			account = o.account
		}
	} else {
		body += "    kubeconfig: " + env.tb.Backend.BurstletKubeconfig + "\n"
	}
	if o.kubelet != "" {
		body += "kubeletApi:\n" + o.kubelet
	}
	if o.admission {
		body += fmt.Sprintf("admission:\n  listen: 127.0.0.1:%d\n  hosts: [127.0.0.1]\n", freePort(t))
	}
	body += o.config
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cciDaemon{clusterID: id, config: config, account: account}
	if o.api == "kubernetes" {
		plainBackendNamespace(t, c.backendNamespace(), id)
	}
	if !o.noCleanup {
		t.Cleanup(func() {
			var extra []string
			if c.daemon != nil {
				// The node's own objects; the namespace goes with the last node of the cluster ID.
				extra = []string{"--node-name", c.node}
			}
			if o.admission && c.daemon != nil {
				// It also removes the webhook's registration, from the cluster.
				extra = append(extra, "--kubeconfig", env.tb.Cluster.BurstletKubeconfig)
			}
			if out, err := cleanup(config, extra...); err != nil {
				t.Errorf("burstlet cleanup: %v\n%s", err, out)
			}
		})
	}
	if o.wait {
		c.daemon = startDaemon(t, "--config", config)
	} else {
		c.daemon = newDaemon(t, "--config", config)
	}
	return c
}

// plainBackendNamespace makes the backend namespace of a kubernetes-API daemon beforehand, as
// burstlet would (its ownership labels), and labelled so that a CCI-mode plane treats it as a
// plain Kubernetes backend. On a plain plane the label changes nothing.
func plainBackendNamespace(t *testing.T, name, clusterID string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"burstlet.io/managed-by": "burstlet", "burstlet.io/cluster-id": clusterID,
		testbed.PlainNamespaceLabel: testbed.PlainNamespaceValue}}}
	if _, err := env.backend.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("plain backend namespace %s: %v", name, err)
	}
}

func cleanup(config string, extra ...string) (string, error) {
	cmd := exec.Command(os.Getenv("BURSTLET"), append([]string{"cleanup", "--config", config, "--timeout", "2m"},
		extra...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// cciPodSpec targets the node and asks for resources, as CCI requires (a container with CPU).
func cciPodSpec(d *daemon) corev1.PodSpec {
	spec := podSpecFor(d)
	spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("300m"),
			corev1.ResourceMemory: resource.MustParse("512Mi")}}
	return spec
}

func backendPods(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	list, err := env.backend.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if list == nil {
		return nil
	}
	return list.Items
}

// backendPodFor finds the backend pod made for a cluster pod, by the source annotations.
func backendPodFor(t *testing.T, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	for _, b := range backendPods(t, ns) {
		if b.Annotations["burstlet.io/source-uid"] == string(p.UID) {
			b := b
			return &b
		}
	}
	return nil
}

// Deployment, StatefulSet and Job on the virtual node run on the backend plane: their backend
// objects carry the translation, status and events come back, a ConfigMap edit reaches the
// backend copy, and deleting the workloads leaves nothing behind.
func TestCciWorkloadsRunOnBackend(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()

	_, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("backend namespace %s: %v", bns, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web-config"},
		Data: map[string]string{"index.html": "v1"}}
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	web := cciPodSpec(d.daemon)
	web.Volumes = []corev1.Volume{{Name: "html", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}}}
	web.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "html", MountPath: "/usr/share/nginx/html"}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: int32p(3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: web}}}
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The StatefulSet mounts a Secret and pulls with an image pull secret: both are copied.
	for _, sec := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "db-password"}, StringData: map[string]string{"password": "s3cret"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "registry"}, Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"registry.example":{"auth":"dTpw"}}}`}},
	} {
		if _, err := env.cluster.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	db := cciPodSpec(d.daemon)
	db.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
	db.Volumes = []corev1.Volume{{Name: "pw", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: "db-password"}}}}
	db.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "pw", MountPath: "/etc/pw"}}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: int32p(2), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: db}}}
	if _, err := env.cluster.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	jobSpec := cciPodSpec(d.daemon)
	jobSpec.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "batch"},
		Spec: batchv1.JobSpec{BackoffLimit: int32p(0),
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "batch"},
				Annotations: map[string]string{testbed.ExitCodeAnnotation: "0"}}, Spec: jobSpec}}}
	if _, err := env.cluster.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod whose container fails: the exit code comes back.
	failing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "fails",
		Annotations: map[string]string{testbed.ExitCodeAnnotation: "3"}}, Spec: cciPodSpec(d.daemon)}
	failing.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, failing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, app := range []struct {
		selector string
		want     int
	}{{"app=web", 3}, {"app=db", 2}} {
		eventually(t, 90*time.Second, app.selector+" Running on the backend", func() error {
			pods := podsOf(t, ns, app.selector)
			if len(pods) != app.want {
				return fmt.Errorf("%d pods, want %d", len(pods), app.want)
			}
			for i := range pods {
				p := &pods[i]
				if err := runningOn(p, d.node); err != nil {
					return err
				}
				if !strings.HasPrefix(p.Status.PodIP, "10.245.") {
					return fmt.Errorf("%s podIP %q is not from the backend fleet", p.Name, p.Status.PodIP)
				}
				if p.Status.HostIP != d.nodeIP {
					return fmt.Errorf("%s hostIP %q, want the virtual node's", p.Name, p.Status.HostIP)
				}
				if len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
					return fmt.Errorf("%s container statuses %+v", p.Name, p.Status.ContainerStatuses)
				}
			}
			return nil
		})
	}

	// The backend objects: one pod per cluster pod, translated.
	for _, p := range podsOf(t, ns, "app=web") {
		b := backendPodFor(t, bns, &p)
		if b == nil {
			t.Fatalf("no backend pod for %s", p.Name)
		}
		if b.Annotations["burstlet.io/source-namespace"] != ns || b.Annotations["burstlet.io/source-name"] != p.Name {
			t.Errorf("backend pod %s source annotations %v", b.Name, b.Annotations)
		}
		if b.Spec.NodeName == d.node || len(b.Spec.Tolerations) > 0 && b.Spec.Tolerations[0].Key == "virtual-kubelet.io/provider" {
			t.Errorf("backend pod %s kept the cluster's scheduling: node %q tolerations %v", b.Name, b.Spec.NodeName, b.Spec.Tolerations)
		}
		if !strings.HasPrefix(b.Spec.NodeName, "cci-fleet-") {
			t.Errorf("backend pod %s runs on %q", b.Name, b.Spec.NodeName)
		}
		// Normalized: 300m rounds up to 500m (a multiple of 250m), requests equal limits, and
		// the pod-level result is recorded.
		c := b.Spec.Containers[0]
		if c.Resources.Limits.Cpu().MilliValue() != 500 || c.Resources.Requests.Cpu().MilliValue() != 500 {
			t.Errorf("backend pod %s cpu requests %v limits %v, want 500m both", b.Name,
				c.Resources.Requests.Cpu(), c.Resources.Limits.Cpu())
		}
		if b.Annotations["virtual-kubelet.cci.io/burst-pod-cpu"] == "" || b.Annotations["virtual-kubelet.cci.io/burst-pod-memory"] == "" {
			t.Errorf("backend pod %s lacks the normalization annotations: %v", b.Name, b.Annotations)
		}
		for _, v := range b.Spec.Volumes {
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.ServiceAccountToken != nil {
						t.Errorf("backend pod %s carries the cluster's service account token volume %s", b.Name, v.Name)
					}
				}
			}
			if v.ConfigMap != nil {
				if _, err := env.backend.CoreV1().ConfigMaps(bns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{}); err != nil {
					t.Errorf("backend copy %s of web-config: %v", v.ConfigMap.Name, err)
				}
			}
		}
	}

	// The StatefulSet's Secrets on the backend, referenced by their backend names.
	for _, p := range podsOf(t, ns, "app=db") {
		b := backendPodFor(t, bns, &p)
		if b == nil {
			t.Fatalf("no backend pod for %s", p.Name)
		}
		if len(b.Spec.ImagePullSecrets) != 1 {
			t.Fatalf("backend pod %s image pull secrets %v", b.Name, b.Spec.ImagePullSecrets)
		}
		pull, err := env.backend.CoreV1().Secrets(bns).Get(ctx, b.Spec.ImagePullSecrets[0].Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("image pull secret copy: %v", err)
		}
		if pull.Type != corev1.SecretTypeDockerConfigJson || len(pull.Data[corev1.DockerConfigJsonKey]) == 0 {
			t.Errorf("image pull secret copy: type %s keys %d", pull.Type, len(pull.Data))
		}
		var pwName string
		for _, v := range b.Spec.Volumes {
			if v.Secret != nil {
				pwName = v.Secret.SecretName
			}
		}
		pw, err := env.backend.CoreV1().Secrets(bns).Get(ctx, pwName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("secret volume copy %q: %v", pwName, err)
		}
		if string(pw.Data["password"]) != "s3cret" {
			t.Errorf("secret copy %s has other data", pw.Name)
		}
	}

	// The Job completes; the failing pod ends Failed with its exit code.
	eventually(t, 90*time.Second, "Job complete", func() error {
		j, err := env.cluster.BatchV1().Jobs(ns).Get(ctx, "batch", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if j.Status.Succeeded != 1 {
			return fmt.Errorf("job status %+v", j.Status)
		}
		return nil
	})
	eventually(t, 60*time.Second, "failing pod Failed with exit code 3", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "fails", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed || len(p.Status.ContainerStatuses) != 1 ||
			p.Status.ContainerStatuses[0].State.Terminated == nil ||
			p.Status.ContainerStatuses[0].State.Terminated.ExitCode != 3 {
			return fmt.Errorf("phase %s statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		return nil
	})

	// The backend's scheduling stays on the backend: once its scheduler placed the backend pod,
	// the cluster pod still has one Scheduled event, the cluster scheduler's naming the virtual
	// node, and no event names a backend node.
	web0 := podsOf(t, ns, "app=web")[0]
	var backendWeb0 string
	for _, p := range backendPods(t, bns) {
		if p.Annotations["burstlet.io/source-name"] == web0.Name {
			backendWeb0 = p.Name
		}
	}
	if backendWeb0 == "" {
		t.Fatalf("no backend pod for %s", web0.Name)
	}
	eventually(t, 30*time.Second, "backend scheduler's event on the backend pod", func() error {
		list, err := env.backend.CoreV1().Events(bns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", backendWeb0).String()})
		if err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Reason == "Scheduled" && strings.Contains(e.Message, "cci-fleet-") {
				return nil
			}
		}
		return fmt.Errorf("backend events %v", list.Items)
	})
	time.Sleep(3 * time.Second) // time enough for a mirror to show what it would
	scheduled := 0
	for _, e := range eventsFor(t, ns, web0.Name) {
		if strings.Contains(e.Message, "cci-fleet-") {
			t.Errorf("event naming a backend node: %s %s", e.Reason, e.Message)
		}
		if e.Reason == "Scheduled" {
			scheduled++
			if !strings.Contains(e.Message, d.node) {
				t.Errorf("Scheduled event not naming the virtual node %s: %s", d.node, e.Message)
			}
		}
	}
	if scheduled != 1 {
		t.Errorf("%d Scheduled events on %s: %v", scheduled, web0.Name, eventsFor(t, ns, web0.Name))
	}

	// A ConfigMap edit reaches the backend copy.
	cm.Data["index.html"] = "v2"
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "ConfigMap edit on the backend copy", func() error {
		list, err := env.backend.CoreV1().ConfigMaps(bns).List(ctx, metav1.ListOptions{LabelSelector: copySelector})
		if err != nil {
			return err
		}
		for _, c := range list.Items {
			if c.Annotations["burstlet.io/source-name"] == "web-config" {
				if c.Data["index.html"] == "v2" {
					return nil
				}
				return fmt.Errorf("copy %s has %q", c.Name, c.Data["index.html"])
			}
		}
		return fmt.Errorf("no copy of web-config among %d ConfigMaps", len(list.Items))
	})

	// Deleting the workloads leaves nothing on the backend.
	bg := metav1.DeletePropagationBackground
	_ = env.cluster.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: &bg})
	_ = env.cluster.AppsV1().StatefulSets(ns).Delete(ctx, "db", metav1.DeleteOptions{PropagationPolicy: &bg})
	_ = env.cluster.BatchV1().Jobs(ns).Delete(ctx, "batch", metav1.DeleteOptions{PropagationPolicy: &bg})
	_ = env.cluster.CoreV1().Pods(ns).Delete(ctx, "fails", metav1.DeleteOptions{})
	eventually(t, 90*time.Second, "nothing left on the backend", func() error {
		if pods := backendPods(t, bns); len(pods) > 0 {
			return fmt.Errorf("%d backend pods left, e.g. %s", len(pods), pods[0].Name)
		}
		for _, list := range []func() (int, error){
			func() (int, error) {
				l, err := env.backend.CoreV1().ConfigMaps(bns).List(ctx, metav1.ListOptions{LabelSelector: copySelector})
				if err != nil {
					return 0, err
				}
				return len(l.Items), nil
			},
			func() (int, error) {
				l, err := env.backend.CoreV1().Secrets(bns).List(ctx, metav1.ListOptions{LabelSelector: copySelector})
				if err != nil {
					return 0, err
				}
				return len(l.Items), nil
			},
		} {
			if n, err := list(); err != nil || n > 0 {
				return fmt.Errorf("%d copies left (%v)", n, err)
			}
		}
		return nil
	})

	// Uninstall: the backend namespace goes, and a second cleanup is a no-op.
	for i := 0; i < 2; i++ {
		if out, err := d.uninstall(); err != nil {
			t.Fatalf("burstlet cleanup #%d: %v\n%s", i+1, err, out)
		}
	}
	if _, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("backend namespace after cleanup: %v", err)
	}
}

// Pods the backend cannot run are failed with a reason naming the rule, a Warning event, and
// never reach the backend; an SFS claim is made available there.
func TestCciRejectsUnsupportedPods(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()

	// Two statically provisioned volumes: one SFS (nas.csi.everest.io), one EVS disk.
	sfsHandle := staticClaim(t, ns, "sfs", "nas.csi.everest.io", "csi-nas")
	staticClaim(t, ns, "evs", "disk.csi.everest.io", "csi-disk")

	claim := claimVolume
	cases := []struct {
		name   string
		mutate func(*corev1.PodSpec)
		reason string
		field  string // a piece of the message naming the offending field
	}{
		{"host-network", func(s *corev1.PodSpec) { s.HostNetwork = true }, "HostNetwork", "hostNetwork"},
		{"host-path", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "logs", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}}
		}, "UnsupportedVolume", "hostPath"},
		{"empty-dir-subpath", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/s", SubPath: "x"}}
		}, "EmptyDirSubPath", "scratch"},
		{"no-cpu", func(s *corev1.PodSpec) { s.Containers[0].Resources = corev1.ResourceRequirements{} }, "NoCPURequest", "CPU"},
		{"too-big", func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("33")
		}, "PodTooLarge", "32"},
		{"evs-claim", func(s *corev1.PodSpec) { s.Volumes = []corev1.Volume{claim("evs")} }, "UnsupportedStorageClass", "disk.csi.everest.io"},
	}
	for _, c := range cases {
		spec := cciPodSpec(d.daemon)
		c.mutate(&spec)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.name}, Spec: spec}
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	// A DaemonSet whose pods land on the virtual node.
	dsSpec := cciPodSpec(d.daemon)
	dsSpec.NodeSelector = nil
	dsSpec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{
			Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{d.node}}}}}}}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}}, Spec: dsSpec}}}
	if _, err := env.cluster.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name   string
		mutate func(*corev1.PodSpec)
		reason string
		field  string
	}{"agent", nil, "DaemonSetPod", "agent"})
	// An SFS claim is accepted.
	sfs := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sfs-user"}, Spec: cciPodSpec(d.daemon)}
	sfs.Spec.Volumes = []corev1.Volume{claim("sfs")}
	sfs.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, sfs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, c := range cases {
		c := c
		eventually(t, 60*time.Second, c.name+" rejected with "+c.reason, func() error {
			var p *corev1.Pod
			if c.mutate == nil {
				pods := podsOf(t, ns, "app=agent")
				if len(pods) != 1 {
					return fmt.Errorf("%d DaemonSet pods", len(pods))
				}
				p = &pods[0]
			} else {
				got, err := env.cluster.CoreV1().Pods(ns).Get(ctx, c.name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				p = got
			}
			if p.Status.Phase != corev1.PodFailed || p.Status.Reason != c.reason {
				return fmt.Errorf("phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
			}
			if !strings.Contains(p.Status.Message, c.field) {
				return fmt.Errorf("message %q does not name %q", p.Status.Message, c.field)
			}
			for _, e := range eventsFor(t, ns, p.Name) {
				if e.Type == corev1.EventTypeWarning && e.Reason == c.reason {
					if backendPodFor(t, bns, p) != nil {
						return fmt.Errorf("%s reached the backend", p.Name)
					}
					return nil
				}
			}
			return fmt.Errorf("no Warning event %s on %s", c.reason, p.Name)
		})
	}

	eventually(t, 60*time.Second, "SFS pod Running with its volume on the backend", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "sfs-user", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := runningOn(p, d.node); err != nil {
			return err
		}
		b := backendPodFor(t, bns, p)
		if b == nil || len(b.Spec.Volumes) == 0 || b.Spec.Volumes[0].PersistentVolumeClaim == nil {
			return fmt.Errorf("backend pod %+v", b)
		}
		pvc, err := env.backend.CoreV1().PersistentVolumeClaims(bns).Get(ctx, b.Spec.Volumes[0].PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if env.tb.Backend.CCIGateway != nil {
			// CCI mode: the claim copy is CCI's import of the file system.
			if pvc.Annotations["volumeID"] != sfsHandle || pvc.Annotations["fsType"] != "nfs" ||
				pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "nfs-rw" {
				return fmt.Errorf("backend claim %s: annotations %v class %v", pvc.Name, pvc.Annotations, pvc.Spec.StorageClassName)
			}
			return nil
		}
		pv, err := env.backend.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != "nas.csi.everest.io" || pv.Spec.CSI.VolumeHandle != sfsHandle {
			return fmt.Errorf("backend volume %+v", pv.Spec.PersistentVolumeSource)
		}
		if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
			return fmt.Errorf("backend volume reclaim policy %s", pv.Spec.PersistentVolumeReclaimPolicy)
		}
		return nil
	})
	// Released when unused: the pod goes, then its claim and volume on the backend.
	if err := env.cluster.CoreV1().Pods(ns).Delete(ctx, "sfs-user", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "backend claim and volume released", func() error {
		l, err := env.backend.CoreV1().PersistentVolumeClaims(bns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(l.Items) > 0 {
			return fmt.Errorf("%d backend claims", len(l.Items))
		}
		pvs, err := env.backend.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{
			LabelSelector: "burstlet.io/cluster-id=" + d.clusterID})
		if err != nil {
			return err
		}
		if len(pvs.Items) > 0 {
			return fmt.Errorf("%d backend volumes", len(pvs.Items))
		}
		return nil
	})
	if env.tb.Backend.CCIGateway != nil {
		// Unbound, not deleted: the file system is still there, and free.
		fs, err := testbed.GetFileSystem(ctx, env.backend, sfsHandle)
		if err != nil {
			t.Fatalf("file system %s after its claim copy went: %v", sfsHandle, err)
		}
		if fs.BoundTo != "" {
			t.Errorf("file system %s still bound to %s", sfsHandle, fs.BoundTo)
		}
	}
	if pods := backendPods(t, bns); len(pods) != 0 {
		t.Errorf("%d pods on the backend, want none", len(pods))
	}
}

// staticClaim makes claim `name` in cluster namespace ns, bound to a statically provisioned CSI
// volume of `driver` and StorageClass `class` as CCE's everest makes them (the file system's ID as
// volume handle, its share path in everest.io/share-export-location, an SFS Turbo type in
// everest.io/share-volume-type when `attrs` says). On a CCI-mode backend plane an SFS or SFS Turbo
// file system is registered with the CCI gateway, as one that exists in the account is on CCI.
// It returns the volume handle (the file system's ID).
func staticClaim(t *testing.T, ns, name, driver, class string, attrs ...string) string {
	t.Helper()
	ctx := context.Background()
	pvName := ns + "-" + name
	handle := fmt.Sprintf("fs-%x", sha256.Sum256([]byte(pvName)))[:24] // CCI: an ID of at most 64
	share := "sfs-nas01.testbed.local:/share-" + pvName
	if driver == "sfsturbo.csi.everest.io" {
		share = "192.168.0.10:/" + pvName
	}
	attributes := map[string]string{"everest.io/share-export-location": share}
	for i := 0; i+1 < len(attrs); i += 2 {
		attributes[attrs[i]] = attrs[i+1]
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: class,
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: driver, VolumeHandle: handle, VolumeAttributes: attributes}},
			ClaimRef: &corev1.ObjectReference{Namespace: ns, Name: name}}}
	if _, err := env.cluster.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.cluster.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: &class, VolumeName: pvName,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("10Gi")}}}}
	if _, err := env.cluster.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fsType := map[string]string{"nas.csi.everest.io": testbed.FileSystemSFS,
		"sfsturbo.csi.everest.io": testbed.FileSystemSFSTurbo}[driver]
	if env.tb.Backend.CCIGateway != nil && fsType != "" {
		fs := testbed.FileSystem{ID: handle, Type: fsType, SharePath: share}
		if err := testbed.CreateFileSystem(ctx, env.backend, fs); err != nil {
			t.Fatalf("file system %s: %v", handle, err)
		}
	}
	return handle
}

// claimVolume is a pod volume "data" mounting claim `name`.
func claimVolume(name string) corev1.Volume {
	return corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}
}

// A pod mounting a ConfigMap that does not exist waits with the kubelet's reason and starts
// once the ConfigMap is created.
func TestCciPodWaitsForItsConfigMap(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	spec := cciPodSpec(d.daemon)
	spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "late"}}}}}
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "waiter"}, Spec: spec}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitsForConfig(t, ns, "waiter", `configmap "late" not found`)
	if pods := backendPods(t, d.backendNamespace()); len(pods) != 0 {
		t.Fatalf("%d backend pods while the ConfigMap is missing", len(pods))
	}
	created := time.Now()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Data: map[string]string{"k": "v"}}
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "pod Running once the ConfigMap exists", func() error {
		got, err := env.cluster.CoreV1().Pods(ns).Get(ctx, "waiter", metav1.GetOptions{})
		if err != nil {
			return err
		}
		return runningOn(got, d.node)
	})
	// Woken by the ConfigMap, not by the retry backoff (which reaches a minute).
	if waited := time.Since(created); waited > 15*time.Second {
		t.Errorf("pod started %v after its ConfigMap appeared", waited)
	}
}

// The manifests in deploy/ are valid for the cluster's API server (server-side dry run).
func TestDeployManifestsDryRun(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join("..", "..", "deploy")
	var cm corev1.ConfigMap
	readManifest(t, filepath.Join(root, "config.yaml"), &cm)
	if _, err := env.cluster.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, &cm,
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("config.yaml: %v", err)
	}
	var job batchv1.Job
	readManifest(t, filepath.Join(root, "uninstall-job.yaml"), &job)
	if _, err := env.cluster.BatchV1().Jobs(job.Namespace).Create(ctx, &job,
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("uninstall-job.yaml: %v", err)
	}
	if got := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "); !strings.HasPrefix(got, "cleanup --config /etc/burstlet/config.yaml") {
		t.Errorf("uninstall job runs %q", got)
	}
}

func readManifest(t *testing.T, path string, into interface{}) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// burstlet killed with SIGKILL while 60 pods with a shared ConfigMap go to the backend, and
// restarted: every pod ends Running with exactly one backend pod of its UID, and once the pods
// are deleted nothing of them stays on the backend.
func TestCciKillDuringCreationsLosesAndDuplicatesNothing(t *testing.T) {
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	bns := d.backendNamespace()
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"k": "v"}}
	if _, err := env.cluster.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const total = 60
	for i := 0; i < total; i++ {
		spec := cciPodSpec(d.daemon)
		spec.NodeName = d.node // bound directly, as the scheduler would
		spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}}}}}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%02d", i)}, Spec: spec}
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if i == total/3 {
			if err := d.stop(syscall.SIGKILL); err == nil {
				t.Fatal("SIGKILL should not exit cleanly")
			}
			t.Logf("killed with %d backend pods", len(backendPods(t, bns)))
		}
	}
	d.start()
	d.waitReady(60 * time.Second)
	allRunningOnce(t, ns, bns, total, 120*time.Second)
	if err := env.cluster.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "backend empty", func() error {
		if n := len(backendPods(t, bns)); n > 0 {
			return fmt.Errorf("%d backend pods", n)
		}
		l, err := env.backend.CoreV1().ConfigMaps(bns).List(ctx, metav1.ListOptions{LabelSelector: copySelector})
		if err != nil {
			return err
		}
		if len(l.Items) > 0 {
			return fmt.Errorf("%d copies", len(l.Items))
		}
		return nil
	})
}
