package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The Helm chart (deploy/chart/burstlet): `helm lint --strict` passes, its renderings (CCI with
// AK/SK, a Kubernetes backend by kubeconfig, with the webhook and the network proxy) are accepted
// by the cluster's API server in a server-side dry run, and the config.yaml each renders is one
// burstlet accepts (it gets past the configuration to the cluster connection).
func TestHelmChartLintsAndRendersWhatTheClusterAccepts(t *testing.T) {
	chart := filepath.Join("..", "..", "deploy", "chart", "burstlet")
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
	}
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
			// burstlet takes the rendered config.
			var config string
			for _, doc := range strings.Split(rendered, "\n---") {
				var cm corev1.ConfigMap
				if err := yaml.Unmarshal([]byte(doc), &cm); err == nil && cm.Kind == "ConfigMap" {
					config = cm.Data["config.yaml"]
				}
			}
			if config == "" {
				t.Fatalf("no ConfigMap with config.yaml in:\n%s", rendered)
			}
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
