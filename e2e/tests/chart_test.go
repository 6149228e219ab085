package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"burstlet/e2e/testbed"
)

// The Helm chart (deploy/chart/burstlet): `helm lint --strict` passes, its renderings (CCI with
// AK/SK, a Kubernetes backend by kubeconfig, with the webhook and the network proxy, two replicas,
// one leader-elected replica) are accepted by the cluster's API server in a server-side dry run,
// roll as leader election needs (checkLeaderElection), and the config.yaml each renders is one
// burstlet accepts (it gets past the configuration to the cluster connection).
func TestHelmChartLintsAndRendersWhatTheClusterAccepts(t *testing.T) {
	chart := chartDir
	bin := os.Getenv("BURSTLET_BIN_DIR")
	helm := filepath.Join(bin, "helm")
	kubectl := filepath.Join(bin, "kubectl")
	ns := namespace(t, env.cluster)
	run := func(name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "HELM_CACHE_HOME="+t.TempDir(),
			"HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	variants := map[string][]string{
		"cci": {"--set", "provider.cci.endpoint=https://cci.cn-north-4.myhuaweicloud.com",
			"--set", "provider.cci.projectID=0123456789abcdef0123456789abcdef", "--set", "provider.cci.akskSecret=kube-system/burstlet-aksk"},
		"kubernetes": {"--set", "provider.cci.kubeconfigSecret=burstlet-backend", "--set", "provider.cci.api=kubernetes"},
		"webhook-and-proxy": {"--set", "provider.cci.kubeconfigSecret=burstlet-backend",
			"--set", "admission.enabled=true", "--set", "network.proxy.enabled=true",
			"--set", "network.clusterDNS={10.96.0.10}", "--set", "replicas=2",
			"--set", "node.name=vk-chart-" + ns},
		// High availability: two replicas elect a leader (by themselves), with other durations.
		"two-replicas": {"--set", "provider.cci.kubeconfigSecret=burstlet-backend", "--set", "replicas=2",
			"--set", "leaderElection.leaseDuration=20s", "--set", "leaderElection.renewDeadline=12s",
			"--set", "leaderElection.retryPeriod=3s"},
		// One replica that elects itself: its upgrades roll without a gap.
		"one-replica-elected": {"--set", "provider.cci.kubeconfigSecret=burstlet-backend",
			"--set", "leaderElection.enabled=true", "--set", "leaderElection.namespace=kube-system"},
	}
	// Which variants elect a leader: asked for, or more than one replica.
	leaderElected := map[string]bool{"webhook-and-proxy": true, "two-replicas": true, "one-replica-elected": true}
	for name, values := range variants {
		t.Run(name, func(t *testing.T) {
			if out, err := run(helm, append([]string{"lint", "--strict", chart}, values...)...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			rendered, err := run(helm, append([]string{"template", "rel", chart, "--namespace", ns}, values...)...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, rendered)
			}
			manifest := filepath.Join(t.TempDir(), "rendered.yaml")
			if err := os.WriteFile(manifest, []byte(rendered), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := run(kubectl, "--kubeconfig", env.tb.Cluster.AdminKubeconfig, "apply",
				"--dry-run=server", "-f", manifest); err != nil {
				t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
			}
			objs, err := testbed.DecodeManifests(manifest)
			if err != nil {
				t.Fatal(err)
			}
			var config string
			var deployment *appsv1.Deployment
			var service *corev1.Service
			pdbs := 0
			for _, o := range objs {
				switch o := o.(type) {
				case *corev1.Service:
					service = o
				case *corev1.ConfigMap:
					config = o.Data["config.yaml"]
				case *appsv1.Deployment:
					deployment = o
				case *policyv1.PodDisruptionBudget:
					pdbs++
				}
			}
			if config == "" || deployment == nil {
				t.Fatalf("no ConfigMap with config.yaml or no Deployment in:\n%s", rendered)
			}
			checkLeaderElection(t, deployment, pdbs, config, leaderElected[name])
			// The Service sends to the replica holding the Lease only (it labels its pod).
			if service == nil {
				t.Fatalf("no Service in:\n%s", rendered)
			}
			if got := service.Spec.Selector["burstlet.io/leader"] == "true"; got != leaderElected[name] {
				t.Errorf("Service selector %v: selects the leader %v, want %v", service.Spec.Selector, got, leaderElected[name])
			}
			// burstlet takes the rendered config.
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Getenv("BURSTLET"), "run", "--config", path)
			cmd.Env = []string{"PATH=/usr/bin:/bin"} // not in a cluster: it stops at the connection
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), "cluster connection") || strings.Contains(string(out), "InvalidConfig") {
				t.Errorf("burstlet run --config <rendered>: want it past the configuration, got:\n%s\nconfig:\n%s", out, config)
			}
		})
	}
	// Values that cannot work are refused by the chart itself, with the value's name.
	if out, err := run(helm, "template", "rel", chart); err == nil || !strings.Contains(out, "provider.cci.endpoint") {
		t.Errorf("helm template without a backend: %v\n%s", err, out)
	}
}

// checkLeaderElection: a leader-elected rendering has leaderElection on in its config, rolls a
// standby in before an old pod stops (maxUnavailable 0, maxSurge 1) and gives each replica its
// pod name and namespace; without it one pod stops before the next starts (Recreate). More than
// one replica always elects, and has a PodDisruptionBudget.
func checkLeaderElection(t *testing.T, d *appsv1.Deployment, pdbs int, config string, want bool) {
	t.Helper()
	if got := strings.Contains(config, "leaderElection:\n  enabled: true\n"); got != want {
		t.Errorf("config leaderElection enabled %v, want %v:\n%s", got, want, config)
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if replicas > 1 && !want {
		t.Errorf("%d replicas without leader election", replicas)
	}
	s := d.Spec.Strategy
	if want {
		if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
			s.RollingUpdate.MaxUnavailable.String() != "0" || s.RollingUpdate.MaxSurge.String() != "1" {
			t.Errorf("leader-elected Deployment strategy %+v, want RollingUpdate maxUnavailable 0 maxSurge 1", s)
		}
	} else if s.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("Deployment strategy %+v, want Recreate", s)
	}
	fields := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fields[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if fields["POD_NAME"] != "metadata.name" || fields["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("env from the downward API %v, want POD_NAME and POD_NAMESPACE", fields)
	}
	if wantPDB := replicas > 1; (pdbs == 1) != wantPDB {
		t.Errorf("%d PodDisruptionBudgets with %d replicas", pdbs, replicas)
	}
}

// The chart grants what deploy/rbac/cluster.yaml grants: its rules (files/cluster-rbac-rules.yaml)
// are that file's, the whole ClusterRole with the webhook and self-approval on, and the webhook
// certificates' Role; without those features, none of theirs.
func TestHelmChartGrantsWhatDeployRBACGrants(t *testing.T) {
	rbac := func(path string) (cluster, role []rbacv1.PolicyRule) {
		t.Helper()
		objs, err := testbed.DecodeManifests(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			switch o := o.(type) {
			case *rbacv1.ClusterRole:
				if !strings.HasSuffix(o.Name, "-netproxy") {
					cluster = o.Rules
				}
			case *rbacv1.Role:
				// The webhook certificates' Role, by name: other Roles grant other things.
				if strings.HasSuffix(o.Name, "-webhook-certificates") {
					role = o.Rules
				}
			}
		}
		return cluster, role
	}
	render := func(values ...string) string {
		t.Helper()
		out, err := helmCommand(t, append([]string{"template", "rel", chartDir, "--show-only", "templates/rbac.yaml",
			"--set", "provider.cci.kubeconfigSecret=backend"}, values...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		path := filepath.Join(t.TempDir(), "rbac.yaml")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	wantCluster, wantRole := rbac(filepath.Join("..", "..", "deploy", "rbac", "cluster.yaml"))
	cluster, role := rbac(render("--set", "admission.enabled=true", "--set", "kubeletApi.approveOwnRequest=true"))
	if !reflect.DeepEqual(cluster, wantCluster) {
		t.Errorf("the chart's ClusterRole:\n%v\ndeploy/rbac/cluster.yaml's:\n%v", cluster, wantCluster)
	}
	if !reflect.DeepEqual(role, wantRole) || len(role) == 0 {
		t.Errorf("the chart's webhook certificates Role:\n%v\ndeploy/rbac/cluster.yaml's:\n%v", role, wantRole)
	}
	cluster, role = rbac(render())
	for _, r := range cluster {
		for _, res := range r.Resources {
			if res == "certificatesigningrequests/approval" || res == "mutatingwebhookconfigurations" {
				t.Errorf("without the webhook and self-approval the chart grants %v", r)
			}
		}
	}
	if len(cluster) == 0 || len(role) != 0 {
		t.Errorf("without the webhook: ClusterRole %v, Role %v", cluster, role)
	}
}

// The uninstall hook stops the release's own Deployment before its cleanup (--stop-deployment
// <release namespace>/<Deployment>), and may: a Role of the release's namespace grants the hook's
// ServiceAccount exactly what that takes, on that Deployment only. Without the hook, neither.
func TestHelmChartUninstallHookStopsItsDeployment(t *testing.T) {
	render := func(values ...string) []runtime.Object {
		t.Helper()
		out, err := helmCommand(t, append([]string{"template", "rel", chartDir, "--namespace", "burst-ops",
			"--set", "provider.cci.kubeconfigSecret=backend", "--set", "node.name=vk-zone-a"}, values...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		path := filepath.Join(t.TempDir(), "chart.yaml")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := testbed.DecodeManifests(path)
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	var deployment *appsv1.Deployment
	var job *batchv1.Job
	var role *rbacv1.Role
	var binding *rbacv1.RoleBinding
	for _, o := range render() {
		switch o := o.(type) {
		case *appsv1.Deployment:
			deployment = o
		case *batchv1.Job:
			job = o
		case *rbacv1.Role:
			if strings.HasSuffix(o.Name, "-uninstall") {
				role = o
			}
		case *rbacv1.RoleBinding:
			if strings.HasSuffix(o.Name, "-uninstall") {
				binding = o
			}
		}
	}
	if deployment == nil || job == nil || role == nil || binding == nil {
		t.Fatalf("Deployment %v, hook Job %v, uninstall Role %v, RoleBinding %v: want all", deployment != nil,
			job != nil, role != nil, binding != nil)
	}
	if job.Annotations["helm.sh/hook"] != "pre-delete" {
		t.Errorf("the Job's hook %q, want pre-delete", job.Annotations["helm.sh/hook"])
	}
	args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")
	if want := fmt.Sprintf("--stop-deployment burst-ops/%s", deployment.Name); !strings.Contains(args, want) {
		t.Errorf("the hook's args %q, want %q", args, want)
	}
	name := deployment.Name
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{name}, Verbs: []string{"get"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, ResourceNames: []string{name}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
	}
	if role.Namespace != "burst-ops" || !reflect.DeepEqual(role.Rules, wantRules) {
		t.Errorf("uninstall Role in %q:\n%+v\nwant in burst-ops:\n%+v", role.Namespace, role.Rules, wantRules)
	}
	sa := job.Spec.Template.Spec.ServiceAccountName
	if binding.Namespace != "burst-ops" || binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != role.Name ||
		len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" ||
		binding.Subjects[0].Name != sa || binding.Subjects[0].Namespace != "burst-ops" {
		t.Errorf("uninstall RoleBinding %+v, want Role %s to the hook's ServiceAccount burst-ops/%s", binding, role.Name, sa)
	}
	for _, o := range render("--set", "uninstall.cleanup=false") {
		switch o := o.(type) {
		case *batchv1.Job:
			t.Errorf("uninstall.cleanup=false renders Job %s", o.Name)
		case *rbacv1.Role:
			if strings.HasSuffix(o.Name, "-uninstall") {
				t.Errorf("uninstall.cleanup=false renders Role %s", o.Name)
			}
		}
	}
}
