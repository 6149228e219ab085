// Command driver runs the CCI backend-path benchmark: N pods created at once on burstlet's
// virtual node go through its `cci` provider to the testbed's backend plane (a real
// kube-apiserver and a kwok fleet standing in for CCI). It measures, with client-go watches,
// the time from the first Create to all N Running in the cluster, the writes burstlet sends to
// the cluster and to the backend per pod (its own request counters, while the pods are created
// and over their whole life, delete included) and burstlet's CPU and peak RSS. The peer, in
// the same run, is the same N pods created straight on the backend plane: the floor the backend
// itself sets. It writes bench/results/cci-latest.json and the cci section of docs/perf.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"burstlet/bench/internal/podload"
	"burstlet/bench/internal/report"
	"burstlet/bench/internal/testbed"
)

const (
	clusterNamespace = "bench-cci"      // the pods, in the cluster
	peerNamespace    = "bench-cci-peer" // the peer's pods, on the backend plane
	nodeName         = "burst-cci"
	clusterID        = "bench"
	backendNamespace = "cce-burst-" + clusterID // burstlet's, on the backend plane
	configMapName    = "bench-config"
	appLabel         = "bench-cci"
	workers          = 16
	threads          = 2
)

type options struct {
	root, command string
	pods          int
	creators      int
	wait          time.Duration
	peer, write   bool
}

func main() {
	var o options
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.IntVar(&o.pods, "pods", 1000, "pods created at once")
	flag.IntVar(&o.creators, "creators", 32, "goroutines creating (and deleting) pods")
	flag.DurationVar(&o.wait, "wait", 10*time.Minute, "longest wait for all pods Running, and for all gone")
	flag.BoolVar(&o.peer, "peer", true, "also measure the peer: the same pods straight on the backend plane")
	flag.BoolVar(&o.write, "write", true, "write bench/results/cci-latest.json and docs/perf.md (false: print only)")
	flag.StringVar(&o.command, "command", "make bench-cci", "the command line to record")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-cci:", err)
		os.Exit(1)
	}
}

// result is one path's run: burstlet (cluster → cci provider → backend) or the peer (straight
// to the backend). Pointers are null in the JSON when not measured or not reached.
type result struct {
	Path string `json:"path"`
	Pods int    `json:"pods"`
	podload.Outcome
	// Deletion: first Delete sent to no pod left (burstlet: neither in the cluster namespace nor
	// in the backend namespace).
	DeleteS        *float64 `json:"delete_s"`
	DeleteTimedOut bool     `json:"delete_timed_out,omitempty"`
	BackendGoneS   *float64 `json:"backend_gone_s,omitempty"`     // burstlet: first Delete to backend namespace empty
	BackendRunning int      `json:"backend_running,omitempty"`    // burstlet: backend pods seen Running by the end of the wait
	BackendLeft    int      `json:"backend_left,omitempty"`       // burstlet: backend pods left when the delete wait ended
	ClusterLeft    int      `json:"cluster_left,omitempty"`       // pods left in the namespace when the delete wait ended
	Stuck          []string `json:"stuck,omitempty"`              // samples of pods not Running when the wait ended
	BackendCopies  []string `json:"backend_configmaps,omitempty"` // burstlet: ConfigMaps in the backend namespace at the end
}

// requests are burstlet's requests over one interval, from its counters.
type requests struct {
	ClusterWrites       float64            `json:"cluster_writes"`
	ClusterWritesPerPod float64            `json:"cluster_writes_per_pod"`
	BackendWrites       float64            `json:"backend_writes"`
	BackendWritesPerPod float64            `json:"backend_writes_per_pod"`
	Cluster             map[string]float64 `json:"cluster_by_verb_code"` // "PATCH 200": n, reads included
	Backend             map[string]float64 `json:"backend_by_verb_code"`
}

// process is what burstlet's process did.
type process struct {
	Settings      string             `json:"settings"`
	Config        string             `json:"config_file"`
	CPUCreateS    *float64           `json:"cpu_create_s"` // first Create to idle after all Running
	CPUS          *float64           `json:"cpu_s"`        // first Create to idle after all gone
	PeakRSSMB     *float64           `json:"peak_rss_mb"`  // VmHWM: its whole life
	Startup       *requests          `json:"startup"`      // from start to ready (not per pod: divided by N anyway)
	Create        *requests          `json:"create"`       // first Create to idle after all Running
	Life          *requests          `json:"create_delete"`
	PodSyncsOK    float64            `json:"pod_syncs_ok"`
	PodSyncsError float64            `json:"pod_syncs_error"`
	LogWarnings   int                `json:"log_warnings"`
	LogErrors     int                `json:"log_errors"`
	LogSamples    []string           `json:"log_samples,omitempty"`
	LogTail       []string           `json:"log_tail,omitempty"` // when it exited during the run
	Metrics       map[string]float64 `json:"metrics_end,omitempty"`
}

type benchReport struct {
	Pods      int               `json:"pods"`
	Machine   string            `json:"machine"`
	Command   string            `json:"command"`
	Date      string            `json:"date"`
	DurationS float64           `json:"duration_s"`
	Settings  map[string]string `json:"settings"`
	Burstlet  *result           `json:"burstlet"`
	Peer      *result           `json:"backend_direct"`
	Process   *process          `json:"burstlet_process"`
	// burstlet's time to all Running over the peer's (1.0: no slower than the backend itself).
	TimeRatio *float64        `json:"burstlet_over_backend_time"`
	Targets   map[string]bool `json:"targets_met"`
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	bin := filepath.Join(o.root, "bin")
	state := filepath.Join(o.root, ".state", "bench-cci")
	logDir := filepath.Join(state, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	burstletBin := filepath.Join(o.root, "build", "release", "src", "cmd", "burstlet", "burstlet")
	if _, err := os.Stat(burstletBin); err != nil {
		return fmt.Errorf("burstlet binary (run `make build`): %w", err)
	}
	tb, stopTestbed, err := testbed.Up(bin, state)
	if err != nil {
		return err
	}
	defer stopTestbed()
	cs, err := clientset(tb.Cluster.AdminKubeconfig)
	if err != nil {
		return err
	}
	bs, err := clientset(tb.Backend.AdminKubeconfig)
	if err != nil {
		return err
	}

	rep := &benchReport{Pods: o.pods, Machine: report.Machine(), Command: o.command,
		Date: began.UTC().Format(time.RFC3339), Settings: map[string]string{}, Targets: map[string]bool{}}
	// The peer first, on an idle backend, and its pods deleted before burstlet starts: each path
	// has the backend to itself.
	if o.peer {
		fmt.Printf("backend directly: %d pods at once\n", o.pods)
		if rep.Peer, err = runPeer(ctx, bs, o); err != nil {
			return fmt.Errorf("peer: %w", err)
		}
	}
	fmt.Printf("burstlet (cci provider): %d pods at once\n", o.pods)
	rep.Burstlet, rep.Process, err = runBurstlet(ctx, cs, bs, tb, burstletBin, logDir, o)
	if err != nil {
		return fmt.Errorf("burstlet: %w", err)
	}
	rep.DurationS = time.Since(began).Seconds()
	verdicts(rep)
	text := perfSection(rep, o)
	fmt.Print("\n" + text)
	if !o.write {
		return nil
	}
	results := filepath.Join(o.root, "bench", "results")
	if err := os.MkdirAll(results, 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(results, "cci-latest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return report.WriteSectionAfter(filepath.Join(o.root, "docs", "perf.md"), "cci", "burst", text)
}

// clientset is an admin client without client-side rate limit, speaking protobuf: creating
// pods must limit the measurement as little as possible on a 2-core machine.
func clientset(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, -1
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfig(cfg)
}

func podName(i int) string { return fmt.Sprintf("cci-%05d", i) }

// benchPod is pod i. On the cluster it targets the virtual node the way a user's workload
// would (node selector and the virtual node's taint tolerated; the scheduler binds it) and
// mounts the shared ConfigMap, so burstlet copies that to the backend once for all pods. The
// peer's copy has no scheduling constraint: the backend's fleet takes it.
func benchPod(i int, virtualNode bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(i), Labels: map[string]string{"app": appLabel}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example.com/bench/app:1.0",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")}},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/bench"}},
			}},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: configMapName}}}}},
		},
	}
	if virtualNode {
		p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": nodeName}
		p.Spec.Tolerations = []corev1.Toleration{{Key: "virtual-kubelet.io/provider",
			Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}
	return p
}

func configMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: configMapName},
		Data: map[string]string{"app.properties": "mode=bench\nlevel=info\n"}}
}

func ptr[T any](v T) *T { return &v }
