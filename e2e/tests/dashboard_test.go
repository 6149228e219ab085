package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Grafana dashboard (deploy/grafana/burstlet-dashboard.json) parses, and its queries name
// only metrics a running burstlet (cci provider) exports, and every one of them.
func TestGrafanaDashboardShowsWhatBurstletExports(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "burstlet-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			GridPos *struct {
				W, H int
			} `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard uid %q title %q with %d panels", dash.UID, dash.Title, len(dash.Panels))
	}
	var queries []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] || p.GridPos == nil || p.GridPos.W == 0 || p.Type == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: duplicate id, no position, type or query", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, target := range p.Targets {
			queries = append(queries, target.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			queries = append(queries, q)
		}
	}

	// A pod through the node first: families with labels show once they have a series.
	d := startCciDaemon(t)
	ns := namespace(t, env.cluster)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "metered"}, Spec: cciPodSpec(d.daemon)}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the pod Running", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return runningOn(p, d.node)
	})
	resp, err := http.Get("http://" + d.daemon.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exported := map[string]string{} // family -> type
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "burstlet_") {
			exported[f[2]] = f[3]
		}
	}
	if len(exported) == 0 {
		t.Fatalf("/metrics exports no burstlet_ family:\n%s", body)
	}
	name := regexp.MustCompile(`\bburstlet_[a-z_]+`)
	shown := map[string]bool{}
	for _, q := range queries {
		for _, m := range name.FindAllString(q, -1) {
			family := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base := strings.TrimSuffix(m, suffix); base != m && exported[base] == "histogram" {
					family = base
				}
			}
			if _, ok := exported[family]; !ok {
				t.Errorf("the dashboard queries %s, which burstlet does not export (query %q)", m, q)
			}
			shown[family] = true
		}
	}
	var missing []string
	for family := range exported {
		if !shown[family] {
			missing = append(missing, family)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("burstlet exports %v, which no panel shows", missing)
	}
}
