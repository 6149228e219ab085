package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"burstlet/e2e/testbed"
)

// chartDir is deploy/chart/burstlet, seen from e2e/tests.
var chartDir = filepath.Join("..", "..", "deploy", "chart", "burstlet")

// helmCommand is bin/helm (Helm v4, e2e/tools/helm) with a home of its own (no repositories,
// caches or plugins of this machine's), acting as the cluster's admin.
func helmCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(os.Getenv("BURSTLET_BIN_DIR"), "helm"),
		append(args, "--kubeconfig", env.tb.Cluster.AdminKubeconfig)...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	return cmd
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helmCommand(t, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// localPod stands in for the kubelet of a kwok node, which only pretends to run a pod's
// containers: it runs the pod's first container (burstlet, the image's entrypoint) as a local
// process with what a kubelet would give it:
//   - the pod's ConfigMap and Secret volumes, written under root (the container's file system);
//     the mount paths in the container's args and in the ConfigMaps' files (burstlet's config
//     names files of the other mounts) are moved under root;
//   - the ServiceAccount mount (/var/run/secrets/kubernetes.io/serviceaccount): a token of the
//     pod's ServiceAccount bound to the pod (TokenRequest, as the kubelet's projected volume),
//     the namespace's kube-root-ca.crt and namespace. burstlet finds it there only in a pod, so
//     `--in-cluster` becomes `--in-cluster=false --kubeconfig <that token, CA and the API
//     server's address>` (the address stands for KUBERNETES_SERVICE_HOST/PORT). Every cluster
//     request is the release's ServiceAccount's: its RBAC is what the test exercises;
//   - the container's environment: its values and downward API fields.
type localPod struct {
	pod  *corev1.Pod
	root string
	args []string
	env  []string
}

func newLocalPod(t *testing.T, pod *corev1.Pod) *localPod {
	t.Helper()
	ctx := context.Background()
	c := pod.Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Fatalf("pod %s: container %s has a command %v; the image's entrypoint (burstlet) is expected", pod.Name, c.Name, c.Command)
	}
	lp := &localPod{pod: pod, root: t.TempDir()}
	const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	var mountPaths []string
	for _, m := range c.VolumeMounts {
		mountPaths = append(mountPaths, m.MountPath)
	}
	// Longest first: a mount inside another is moved as itself.
	sort.Slice(mountPaths, func(i, j int) bool { return len(mountPaths[i]) > len(mountPaths[j]) })
	var pairs []string
	for _, m := range mountPaths {
		pairs = append(pairs, m+"/", filepath.Join(lp.root, m)+"/")
	}
	moved := strings.NewReplacer(pairs...)
	moveArg := func(a string) string {
		for _, m := range mountPaths {
			if a == m {
				return filepath.Join(lp.root, m)
			}
		}
		return moved.Replace(a)
	}

	write := func(dir string, files map[string][]byte) {
		dir = filepath.Join(lp.root, dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	serviceAccount := false
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == m.Name {
				vol = &pod.Spec.Volumes[i]
			}
		}
		switch {
		case vol == nil:
			t.Fatalf("pod %s mounts volume %s, which it lacks", pod.Name, m.Name)
		case m.MountPath == saDir && vol.Projected != nil:
			serviceAccount = true // the ServiceAccount admission's kube-api-access volume: below
		case m.SubPath != "":
			t.Fatalf("pod %s: mount %s has a subPath, which this stand-in does not lay out", pod.Name, m.Name)
		case vol.ConfigMap != nil && len(vol.ConfigMap.Items) == 0:
			cm, err := env.cluster.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, vol.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod %s: ConfigMap volume %s: %v", pod.Name, vol.ConfigMap.Name, err)
			}
			files := map[string][]byte{}
			for k, v := range cm.Data {
				files[k] = []byte(moved.Replace(v))
			}
			write(m.MountPath, files)
		case vol.Secret != nil && len(vol.Secret.Items) == 0:
			s, err := env.cluster.CoreV1().Secrets(pod.Namespace).Get(ctx, vol.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod %s: Secret volume %s: %v", pod.Name, vol.Secret.SecretName, err)
			}
			write(m.MountPath, s.Data)
		default:
			t.Fatalf("pod %s: volume %s is neither a whole ConfigMap nor a whole Secret", pod.Name, m.Name)
		}
	}

	if !serviceAccount {
		t.Fatalf("pod %s has no ServiceAccount mount at %s", pod.Name, saDir)
	}
	// The ServiceAccount's token, bound to the pod: it stops working once the pod is gone.
	expiry := int64(3600)
	tr, err := env.cluster.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry,
			BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of ServiceAccount %s/%s: %v", pod.Namespace, pod.Spec.ServiceAccountName, err)
	}
	var rootCA string
	eventually(t, 30*time.Second, "kube-root-ca.crt in "+pod.Namespace, func() error {
		cm, err := env.cluster.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err == nil {
			rootCA = cm.Data["ca.crt"]
		}
		return err
	})
	write(saDir, map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": []byte(rootCA),
		"namespace": []byte(pod.Namespace)})
	sa := filepath.Join(lp.root, saDir)
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["cluster"] = &clientcmdapi.Cluster{Server: env.tb.Cluster.Server,
		CertificateAuthority: filepath.Join(sa, "ca.crt")}
	kubeconfig.AuthInfos["pod"] = &clientcmdapi.AuthInfo{TokenFile: filepath.Join(sa, "token")}
	kubeconfig.Contexts["pod"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "pod", Namespace: pod.Namespace}
	kubeconfig.CurrentContext = "pod"
	kubeconfigPath := filepath.Join(lp.root, "in-cluster.kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, kubeconfigPath); err != nil {
		t.Fatal(err)
	}

	for _, a := range c.Args {
		if a != "--in-cluster" {
			lp.args = append(lp.args, moveArg(a))
		}
	}
	lp.args = append(lp.args, "--in-cluster=false", "--kubeconfig", kubeconfigPath)

	lp.env = []string{"PATH=/usr/bin:/bin", "HOSTNAME=" + pod.Name}
	for _, e := range c.Env {
		value := e.Value
		if e.ValueFrom != nil {
			f := e.ValueFrom.FieldRef
			switch {
			case f != nil && f.FieldPath == "metadata.name":
				value = pod.Name
			case f != nil && f.FieldPath == "metadata.namespace":
				value = pod.Namespace
			case f != nil && f.FieldPath == "spec.serviceAccountName":
				value = pod.Spec.ServiceAccountName
			default:
				t.Fatalf("pod %s: env %s comes from %+v, which this stand-in does not give", pod.Name, e.Name, e.ValueFrom)
			}
		}
		lp.env = append(lp.env, e.Name+"="+value)
	}
	return lp
}

// startDaemon runs the pod's `burstlet run` for node. It listens where this host lets it: the
// pod's own network namespace (kubelet API and metrics on the pod's IP) stands as flags for the
// testbed's node address and free ports.
func (lp *localPod) startDaemon(t *testing.T, node string) *daemon {
	t.Helper()
	d := &daemon{t: t, node: node, logs: filepath.Join(t.TempDir(), "burstlet.log"),
		exec: []string{os.Getenv("BURSTLET")}, env: lp.env}
	d.health = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d.nodeIP = env.tb.NodeIP()
	var err error
	if d.kubeletPort, err = testbed.FreePort(d.nodeIP); err != nil {
		t.Fatal(err)
	}
	d.args = append(append([]string(nil), lp.args...), "--node-ip", d.nodeIP,
		"--kubelet-port", fmt.Sprint(d.kubeletPort), "--kubelet-listen", d.kubeletAddr(),
		"--health-listen", d.health)
	d.start()
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM)
		if t.Failed() {
			d.printLogs()
		}
	})
	return d
}

// podRun is how a localPod's command ended: its output and exit code, or err when it could not
// run or outlived its timeout.
type podRun struct {
	out  string
	code int
	err  error
}

// runAsync runs the pod's command to its end in the background (as a kubelet runs a Job's
// container while the test acts around it) and delivers how it ended.
func (lp *localPod) runAsync(timeout time.Duration) <-chan podRun {
	done := make(chan podRun, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Getenv("BURSTLET"), lp.args...)
		cmd.Env = lp.env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			done <- podRun{out: out.String()}
		case ctx.Err() != nil:
			done <- podRun{out: out.String(), code: -1, err: fmt.Errorf("%v still runs after %v", lp.args, timeout)}
		case errors.As(err, &exit):
			done <- podRun{out: out.String(), code: exit.ExitCode()}
		default:
			done <- podRun{out: out.String(), code: -1, err: fmt.Errorf("%v: %w", lp.args, err)}
		}
	}()
	return done
}

// run runs the pod's command to its end and returns its output and exit code; the test fails
// when it takes longer than timeout.
func (lp *localPod) run(t *testing.T, timeout time.Duration) (string, int) {
	t.Helper()
	r := <-lp.runAsync(timeout)
	if r.err != nil {
		t.Fatalf("%v:\n%s", r.err, r.out)
	}
	return r.out, r.code
}

// runningPod waits for a Running pod (kwok's) in ns matching selector, other than the ones
// named in not.
func runningPod(t *testing.T, ns, selector string, not ...string) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	eventually(t, 60*time.Second, "a Running pod "+selector, func() error {
		var seen []string
		for _, p := range podsOf(t, ns, selector) {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && !contains(not, p.Name) {
				found = &p
				return nil
			}
			seen = append(seen, fmt.Sprintf("%s (%s on %q, %v)", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.Conditions))
		}
		return fmt.Errorf("in %s: %v", ns, seen)
	})
	return found
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitTerminating waits until the pod is being deleted (or gone).
func waitTerminating(t *testing.T, p *corev1.Pod, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "pod "+p.Name+" terminating", func() error {
		cur, err := env.cluster.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && cur.DeletionTimestamp != nil {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("not being deleted")
	})
}

// finishPod removes a terminating pod whose process has exited, as its kubelet would.
func finishPod(t *testing.T, p *corev1.Pod) {
	t.Helper()
	err := env.cluster.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name,
		metav1.DeleteOptions{GracePeriodSeconds: int64p(0)})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// uninstalling is a `helm uninstall` under way, stopped at its pre-delete hook: the hook Job's
// pod, Running on kwok, whose command the test runs (localPod) and whose exit it reports.
type uninstalling struct {
	jobPod *corev1.Pod
	done   chan error
	out    *bytes.Buffer
}

// startUninstall starts `helm uninstall` of the release and waits for its pre-delete Job's pod.
func startUninstall(t *testing.T, release, ns, instance string) *uninstalling {
	t.Helper()
	ctx := context.Background()
	cmd := helmCommand(t, "uninstall", release, "-n", ns, "--timeout", "3m")
	u := &uninstalling{done: make(chan error, 1), out: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = u.out, u.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var jobName string
	eventually(t, 60*time.Second, "helm's pre-delete Job", func() error {
		jobs, err := env.cluster.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: instance})
		if err != nil {
			return err
		}
		for _, j := range jobs.Items {
			if strings.Contains(j.Annotations["helm.sh/hook"], "pre-delete") {
				jobName = j.Name
				return nil
			}
		}
		return fmt.Errorf("%d Jobs of the release, none a pre-delete hook", len(jobs.Items))
	})
	u.jobPod = runningPod(t, ns, "batch.kubernetes.io/job-name="+jobName)
	return u
}

// reportExit gives kwok the exit code of the hook's container, so the Job controller completes
// (or retries) the Job that helm waits for.
func (u *uninstalling) reportExit(t *testing.T, code int) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"%d"}}}`, testbed.ExitCodeAnnotation, code)
	if _, err := env.cluster.CoreV1().Pods(u.jobPod.Namespace).Patch(context.Background(), u.jobPod.Name,
		types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// hookDone waits for the hook's local cleanup (runAsync) to end once the Deployment's pods went,
// and reports its exit code to kwok, as the Job's container would end.
func (u *uninstalling) hookDone(t *testing.T, hookRun <-chan podRun) podRun {
	t.Helper()
	var r podRun
	select {
	case r = <-hookRun:
	case <-time.After(3 * time.Minute):
		t.Fatal("the hook's burstlet cleanup still runs 3m after the Deployment's pods went")
	}
	u.reportExit(t, r.code)
	return r
}

// helmRelease is a release of the chart on the testbed: its namespace, its virtual node and
// backend namespace (the cci provider in CCI mode against the backend plane), and the values
// file the operator would give.
type helmRelease struct {
	name, ns, node, clusterID, bns string
	instance, deploymentPods       string // label selectors: the release's objects, its Deployment's pods
	valuesFile                     string
}

// newHelmRelease makes what the operator gives (the backend's kubeconfig in a Secret of the
// release's new namespace, and the values, with `extra` on top) and removes, when the test ends,
// what a failed run leaves: the release (its cluster-wide RBAC outlives the namespace), pods kept
// Terminating for a kubelet that is gone (also in `others`), the Node, the backend namespace.
func newHelmRelease(t *testing.T, extra map[string]any, others ...string) *helmRelease {
	t.Helper()
	ctx := context.Background()
	r := &helmRelease{name: "burstlet", ns: namespace(t, env.cluster),
		node:      fmt.Sprintf("vk-helm-%d", time.Now().UnixNano()%100000),
		clusterID: fmt.Sprintf("helm%d", time.Now().UnixNano()%10000000)}
	r.bns = "cce-burst-" + r.clusterID
	r.instance = "app.kubernetes.io/instance=" + r.name
	r.deploymentPods = r.instance + ",app.kubernetes.io/component=virtual-node"
	t.Cleanup(func() {
		_, _ = helmCommand(t, "uninstall", r.name, "-n", r.ns, "--no-hooks", "--ignore-not-found").CombinedOutput()
		for _, n := range append([]string{r.ns}, others...) {
			_ = env.cluster.CoreV1().Pods(n).DeleteCollection(context.Background(),
				metav1.DeleteOptions{GracePeriodSeconds: int64p(0)}, metav1.ListOptions{})
		}
		_ = env.cluster.CoreV1().Nodes().Delete(context.Background(), r.node, metav1.DeleteOptions{})
		_ = env.backend.CoreV1().Namespaces().Delete(context.Background(), r.bns, metav1.DeleteOptions{})
	})
	backendKubeconfig, err := os.ReadFile(env.tb.Backend.BurstletKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.cluster.CoreV1().Secrets(r.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "burstlet-backend"},
		Data:       map[string][]byte{"kubeconfig": backendKubeconfig}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var network map[string]any
	if err := yaml.Unmarshal([]byte(cciNetworkConfig(cciGoodSubnet, "")), &network); err != nil {
		t.Fatal(err)
	}
	v := map[string]any{
		"node": map[string]any{"name": r.node},
		"provider": map[string]any{"cci": map[string]any{
			"kubeconfigSecret": "burstlet-backend", "api": "cci", "clusterID": r.clusterID,
			"sweepInterval": "1s", "network": network["network"]}},
		// For kwok, which stands in for the kubelets: the Deployment's pods stay Terminating
		// until their process has exited (finishPod), and the hook Job's pod runs until the test
		// says how its container exited.
		"podAnnotations": map[string]string{testbed.DeleteDelayAnnotation: "never"},
		"uninstall":      map[string]any{"podAnnotations": map[string]string{testbed.HoldExitAnnotation: "true"}},
	}
	for k, x := range extra {
		v[k] = x
	}
	values, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	r.valuesFile = filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(r.valuesFile, values, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// The Helm chart's whole life on the testbed, with the real helm (v4): `helm install` of a
// release whose backend is the testbed's backend plane (its kubeconfig in a Secret, the cci
// provider in CCI mode: Network, flavor, CCI's admission), `helm upgrade` with changed values,
// `helm uninstall` with its pre-delete hook. kwok, which runs the cluster's pods, runs no
// containers: the Deployment's pod and the hook Job's pod are run here as local processes by
// localPod, from the objects helm made (the pod specs, the release's ConfigMap and Secrets, the
// release's ServiceAccount tokens). What a kubelet would do around them the test does: start
// the process once kwok has the pod Running, stop it when the pod is deleted and then remove
// the pod; and for the Job, report the container's exit code to kwok (ExitCodeAnnotation), so
// the Job controller completes the Job that helm waits for. The uninstall's hook stops the
// release's Deployment (scaled to 0, its pod and burstlet gone) before its cleanup removes
// anything on the backend, and no burstlet restarts the node's pods meanwhile.
func TestHelmReleaseInstallsUpgradesAndUninstalls(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	apps := namespace(t, env.cluster) // a workload's
	rel := newHelmRelease(t, nil, apps)
	ns, node, clusterID, bns, release := rel.ns, rel.node, rel.clusterID, rel.bns, rel.name
	instance, deploymentPods, valuesFile := rel.instance, rel.deploymentPods, rel.valuesFile

	// helm install: the Deployment's pod (on a kwok worker) runs burstlet here.
	helm(t, "install", release, chartDir, "-n", ns, "-f", valuesFile)
	pod1 := runningPod(t, ns, deploymentPods)
	d1 := newLocalPod(t, pod1).startDaemon(t, node)
	d1.waitReady(90 * time.Second)
	n, err := env.cluster.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node %s: %v", node, err)
	}
	if n.Labels["node.kubernetes.io/instance-type"] != "burstlet-virtual" {
		t.Errorf("node labels %v, want the chart's default instance type", n.Labels)
	}
	nodeUID := n.UID
	if ns, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); err != nil {
		t.Fatalf("backend namespace %s: %v", bns, err)
	} else if ns.Labels["burstlet.io/cluster-id"] != clusterID {
		t.Errorf("backend namespace %s labels %v", bns, ns.Labels)
	}

	// A pod for the virtual node runs on the backend.
	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{
		NodeSelector: map[string]string{"type": "virtual-kubelet", "kubernetes.io/hostname": node},
		Tolerations: []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoSchedule}},
		Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"),
				corev1.ResourceMemory: resource.MustParse("512Mi")}}}}}}
	if web, err = env.cluster.CoreV1().Pods(apps).Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var backendUID types.UID
	eventually(t, 60*time.Second, "web Running on the backend", func() error {
		p, err := env.cluster.CoreV1().Pods(apps).Get(ctx, web.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := runningOn(p, node); err != nil {
			return err
		}
		b := backendPodFor(t, bns, p)
		if b == nil || b.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("backend pod %v", b)
		}
		backendUID = b.UID
		return nil
	})

	// helm upgrade with other values: a new ConfigMap, and the Deployment rolls (Recreate: the
	// old pod goes before the new one starts), so burstlet restarts with the new config. The
	// backend pod is the same one; the node shows the change.
	config := func() string {
		cm, err := env.cluster.CoreV1().ConfigMaps(ns).Get(ctx, "burstlet-"+node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["config.yaml"]
	}
	before := config()
	helm(t, "upgrade", release, chartDir, "-n", ns, "-f", valuesFile,
		"--set", "node.instanceType=burstlet-upgraded", "--set", "workers=8")
	after := config()
	if after == before || !strings.Contains(after, "instanceType: burstlet-upgraded") || !strings.Contains(after, "workers: 8") {
		t.Fatalf("config after the upgrade:\n%s\nbefore:\n%s", after, before)
	}
	waitTerminating(t, pod1, 60*time.Second)
	if err := d1.stop(syscall.SIGTERM); err != nil {
		t.Errorf("burstlet of %s at SIGTERM: %v", pod1.Name, err)
	}
	finishPod(t, pod1)
	pod2 := runningPod(t, ns, deploymentPods, pod1.Name)
	d2 := newLocalPod(t, pod2).startDaemon(t, node)
	d2.waitReady(90 * time.Second)
	eventually(t, 30*time.Second, "the node's new instance type", func() error {
		n, err := env.cluster.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.UID != nodeUID {
			return fmt.Errorf("node UID %s, was %s: the node was made again", n.UID, nodeUID)
		}
		if got := n.Labels["node.kubernetes.io/instance-type"]; got != "burstlet-upgraded" {
			return fmt.Errorf("instance-type %q", got)
		}
		return nil
	})
	consistently(t, 3*time.Second, "web on the same backend pod", func() error {
		p, err := env.cluster.CoreV1().Pods(apps).Get(ctx, web.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := runningOn(p, node); err != nil {
			return err
		}
		if b := backendPodFor(t, bns, p); b == nil || b.UID != backendUID {
			return fmt.Errorf("backend pod %v, want UID %s", b, backendUID)
		}
		return nil
	})

	// helm uninstall: helm creates the pre-delete hook Job and waits for it; its pod (on a kwok
	// worker) runs `burstlet cleanup --stop-deployment <release's Deployment>` here, and its exit
	// code goes to kwok. The hook first scales the Deployment to 0: its pod is deleted and the
	// burstlet standing in for it stops (as the pod's deletion would stop it), and only once the
	// pod is gone does cleanup remove anything, so no burstlet re-creates what it removes.
	uninstall := startUninstall(t, release, ns, instance)
	hook := newLocalPod(t, uninstall.jobPod)
	deployment := "burstlet-" + node
	if want := ns + "/" + deployment; !strings.Contains(strings.Join(hook.args, " "), "--stop-deployment "+want) {
		t.Fatalf("the hook's args %v: want --stop-deployment %s", hook.args, want)
	}
	hookRun := hook.runAsync(3 * time.Minute)
	hookDone := func() error {
		select {
		case r := <-hookRun:
			hookRun = nil
			return fmt.Errorf("the hook ended (exit %d, %v) while the Deployment's pod %s was there:\n%s", r.code, r.err, pod2.Name, r.out)
		default:
			return nil
		}
	}
	// Nothing removed on the backend yet: the namespace and web's backend pod are there.
	untouched := func() error {
		if err := hookDone(); err != nil {
			return err
		}
		p, err := env.cluster.CoreV1().Pods(apps).Get(ctx, web.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if b := backendPodFor(t, bns, p); b == nil || b.UID != backendUID || b.DeletionTimestamp != nil {
			return fmt.Errorf("web's backend pod %v, want UID %s untouched", b, backendUID)
		}
		return nil
	}
	waitTerminating(t, pod2, 60*time.Second)
	if d, err := env.cluster.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		t.Fatalf("Deployment %s replicas %v while its pod goes, want 0", deployment, d.Spec.Replicas)
	}
	if err := untouched(); err != nil {
		t.Fatalf("when the Deployment's pod began terminating: %v", err)
	}
	if err := d2.stop(syscall.SIGTERM); err != nil {
		t.Errorf("burstlet of %s at SIGTERM: %v", pod2.Name, err)
	}
	// burstlet stopped, its pod not gone yet: cleanup still waits for it.
	consistently(t, 3*time.Second, "the backend untouched while the Deployment's pod is there", untouched)
	finishPod(t, pod2)
	r := uninstall.hookDone(t, hookRun)
	scaled := strings.Index(r.out, fmt.Sprintf("Deployment %s/%s scaled to 0 (from 1 replicas)", ns, deployment))
	stopped := strings.Index(r.out, fmt.Sprintf("no pod of Deployment %s/%s is left (1 stopped", ns, deployment))
	gone := strings.Index(r.out, "backend namespace "+bns+" is gone")
	if r.err != nil || r.code != 0 || scaled < 0 || stopped < scaled || gone < stopped {
		t.Fatalf("the hook's burstlet cleanup: exit %d %v, want the Deployment stopped, then the backend namespace gone:\n%s", r.code, r.err, r.out)
	}
	// No restart loop: no burstlet ran while cleanup removed web's backend pod.
	if p, err := env.cluster.CoreV1().Pods(apps).Get(ctx, web.Name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("web's container statuses after the uninstall %+v, want restartCount 0", p.Status.ContainerStatuses)
	}
	for _, e := range eventsFor(t, apps, web.Name) {
		if e.Reason == "BackendPodLost" {
			t.Errorf("web got %s %q during the uninstall", e.Reason, e.Message)
		}
	}
	uninstalled, uninstallOut := uninstall.done, uninstall.out
	select {
	case err := <-uninstalled:
		if err != nil || !strings.Contains(uninstallOut.String(), "uninstalled") {
			t.Fatalf("helm uninstall: %v\n%s", err, uninstallOut.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("helm uninstall still runs:\n%s", uninstallOut.String())
	}

	// Nothing left: not on the backend (also not once burstlet stopped), not of the release in
	// the cluster.
	consistently(t, 3*time.Second, "the backend namespace gone", func() error {
		if _, err := env.backend.CoreV1().Namespaces().Get(ctx, bns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("backend namespace %s: %v", bns, err)
		}
		return nil
	})
	eventually(t, 30*time.Second, "nothing of the release in the cluster", func() error {
		return releaseLeftovers(ctx, ns, instance, release)
	})
	if out, err := helmCommand(t, "status", release, "-n", ns).CombinedOutput(); err == nil || !strings.Contains(string(out), "not found") {
		t.Errorf("helm status after uninstall: %v\n%s", err, out)
	}
	// burstlet cleanup leaves the Node (no longer heartbeated) to the operator.
	if _, err := env.cluster.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err == nil {
		t.Logf("node %s is still there after the uninstall", node)
	}
	t.Logf("install, upgrade and uninstall took %.1fs", time.Since(started).Seconds())
}

// releaseLeftovers names the objects of the release still in the cluster: labelled with its
// instance (the chart's objects, their pods and ReplicaSets), or helm's records of it.
func releaseLeftovers(ctx context.Context, ns, instance, release string) error {
	rc, err := env.tb.Cluster.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	kinds := []struct {
		gvr        schema.GroupVersionResource
		namespaced bool
		selector   string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, true, "owner=helm,name=" + release},
		{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, true, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, true, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "services"}, true, instance},
		{schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true, instance},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true, instance},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, true, instance},
		{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, true, instance},
		{schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}, true, instance},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, true, instance},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, true, instance},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, false, instance},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, false, instance},
	}
	var left []string
	for _, k := range kinds {
		var r dynamic.ResourceInterface = dyn.Resource(k.gvr)
		if k.namespaced {
			r = dyn.Resource(k.gvr).Namespace(ns)
		}
		list, err := r.List(ctx, metav1.ListOptions{LabelSelector: k.selector})
		if err != nil {
			return fmt.Errorf("%s: %w", k.gvr.Resource, err)
		}
		for _, o := range list.Items {
			left = append(left, k.gvr.Resource+"/"+o.GetName())
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("left: %s", strings.Join(left, ", "))
	}
	return nil
}
