// Command driver runs the admission-latency benchmark of issue 12: pod CREATE requests with
// dryRun=All sent through the testbed's API server at a fixed open-loop rate, each pod owned by
// a ReplicaSet of a Deployment labelled `virtual-kubelet.io/burst-to-cci: auto`, so that
// burstlet's webhook walks the owner chain ReplicaSet → Deployment for every review. The same
// load runs, one after another in the same run, against three configurations: no webhook (the
// API server's floor), a minimal Go webhook (bench/admission/peer: the floor of any webhook
// through this API server) and burstlet's webhook (fake provider, `admission:` on). It records
// each request's latency client-side, checks that burstlet's answer is in every returned pod,
// reads the webhook histogram of the API server's /metrics and the CPU and memory of the
// processes involved. It writes bench/results/admission-latest.json and the admission section
// of docs/perf.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"burstlet/bench/internal/report"
	"burstlet/bench/internal/testbed"
)

const (
	namespace      = "bench-admission"
	nodeName       = "bench-admission" // burstlet's virtual node; its registration is burstlet-<node>
	ownerName      = "bench-owner"     // the labelled Deployment (replicas 0) whose ReplicaSet owns the pods
	burstLabel     = "virtual-kubelet.io/burst-to-cci"
	ruleAnnotation = "burstlet.io/burst-rule"
	// The webhook names the API server's metrics use (the `name` label).
	burstletWebhook = "burst-policy.burstlet.io"
	peerWebhook     = "peer.bench-admission.burstlet.io"
	peerConfig      = "bench-admission-peer" // the peer's MutatingWebhookConfiguration
)

type options struct {
	root, command, state  string
	peerBin, burstletBin  string
	rate                  float64
	duration, warmup      time.Duration
	timeout, quietWait    time.Duration
	configs               []string
	write, keepRawSamples bool
}

func main() {
	var o options
	var configs string
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.StringVar(&o.state, "state", "", "testbed state directory (default <root>/.state/bench-admission)")
	flag.StringVar(&o.peerBin, "peer-bin", "", "the peer webhook binary (default <root>/bin/admission-peer)")
	flag.StringVar(&o.burstletBin, "burstlet-bin", "", "burstlet (default <root>/build/release/src/cmd/burstlet/burstlet)")
	flag.Float64Var(&o.rate, "rate", 100, "pod CREATE requests (dryRun=All) per second, open loop")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "measured time per configuration")
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "load at the same rate before each measurement, not counted")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "client-side limit of one request")
	flag.DurationVar(&o.quietWait, "quiet-wait", 15*time.Minute,
		"longest wait, before each configuration, for the machine to be quiet (under half a core busy)")
	flag.StringVar(&configs, "configs", "none,peer,burstlet", "configurations to measure, in this order")
	flag.BoolVar(&o.keepRawSamples, "samples", true, "keep every request's latency in the JSON")
	flag.BoolVar(&o.write, "write", true, "write bench/results/admission-latest.json and docs/perf.md (false: print only)")
	flag.StringVar(&o.command, "command", "make bench-admission", "the command line to record")
	flag.Parse()
	o.configs = strings.Split(configs, ",")
	if o.state == "" {
		o.state = filepath.Join(o.root, ".state", "bench-admission")
	}
	if o.peerBin == "" {
		o.peerBin = filepath.Join(o.root, "bin", "admission-peer")
	}
	if o.burstletBin == "" {
		o.burstletBin = filepath.Join(o.root, "build", "release", "src", "cmd", "burstlet", "burstlet")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-admission:", err)
		os.Exit(1)
	}
}

// stats are latency percentiles in milliseconds (nearest rank); nil when there are no samples.
type stats struct {
	P50  *float64 `json:"p50_ms"`
	P90  *float64 `json:"p90_ms"`
	P99  *float64 `json:"p99_ms"`
	P999 *float64 `json:"p99_9_ms"`
	Max  *float64 `json:"max_ms"`
	Mean *float64 `json:"mean_ms"`
}

// webhookView is the API server's own view of one webhook over the measured window: the
// increase of apiserver_admission_webhook_admission_duration_seconds{name} (all operations)
// and of apiserver_admission_webhook_fail_open_count{name}.
type webhookView struct {
	Name  string  `json:"name"`
	Calls float64 `json:"calls"`
	// The upper bound of the bucket holding the 99th percentile (nil: above the largest
	// finite bucket) and the buckets themselves (le → calls, cumulative).
	P99BoundMs *float64           `json:"p99_bound_ms"`
	MeanMs     *float64           `json:"mean_ms"`
	Buckets    map[string]float64 `json:"buckets"`
	FailOpen   float64            `json:"fail_open"`
}

// process is what a measured process (burstlet, the peer) did over the measured window.
type process struct {
	Name        string   `json:"name"`
	Settings    string   `json:"settings"`
	CPUS        *float64 `json:"cpu_s"`     // user+system over the window
	Cores       *float64 `json:"cpu_cores"` // cpu_s / window
	CPUPerReqMs *float64 `json:"cpu_per_req_ms"`
	PeakRSSMB   *float64 `json:"peak_rss_mb"` // VmHWM at the end: its whole life
	RSSMB       *float64 `json:"rss_mb"`      // VmRSS at the end of the window
	// The peer: reviews it answered over the window.
	Reviews     *float64 `json:"reviews,omitempty"`
	LogWarnings int      `json:"log_warnings"`
	LogErrors   int      `json:"log_errors"`
	LogSamples  []string `json:"log_samples,omitempty"`
}

// result is one configuration's measurement.
type result struct {
	Config  string `json:"config"`  // none, peer, burstlet
	Webhook string `json:"webhook"` // the webhook registered ("" for none)
	// Requests scheduled in the window, those answered 201, those that failed (any error,
	// the client-side timeout included), and of the answered ones those carrying burstlet's
	// annotation; burstlet's misses are answered pods without it (its answer was ignored).
	Requests     int      `json:"requests"`
	Answered     int      `json:"answered"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	Annotated    int      `json:"annotated"`
	Missed       int      `json:"missed"`
	// Latency: from the moment the request was due (its slot in the open-loop schedule) to its
	// answer, so a late start counts; every request of the window, errors included.
	Latency stats `json:"latency"`
	// How late requests left the driver against their schedule (the client's own lag).
	SendLagP99Ms float64 `json:"send_lag_p99_ms"`
	SendLagMaxMs float64 `json:"send_lag_max_ms"`
	// Achieved rate: requests per second from the first sent to the last sent.
	RatePerS float64 `json:"rate_per_s"`
	// CPU (cores) over the window of the API server, etcd and this driver.
	APIServerCores *float64 `json:"apiserver_cpu_cores"`
	EtcdCores      *float64 `json:"etcd_cpu_cores"`
	DriverCores    *float64 `json:"driver_cpu_cores"`
	// The machine's busy CPU over the window minus the processes above: the idle rest of the
	// testbed, and any other work on this machine (noise).
	OtherCores *float64 `json:"other_cpu_cores"`
	// GETs of ReplicaSets and Deployments the API server answered in the window
	// (apiserver_request_total): the webhook's owner reads.
	OwnerReads *float64     `json:"owner_reads"`
	LoadAvg    [2]string    `json:"loadavg_start_end"` // /proc/loadavg before and after the window
	APIServer  *webhookView `json:"apiserver_webhook,omitempty"`
	Process    *process     `json:"process,omitempty"`
	// Every request's latency in ms, in schedule order; the indices of burstlet's misses.
	SamplesMs []float64 `json:"samples_ms,omitempty"`
	MissedAt  []int     `json:"missed_at,omitempty"`
}

type benchReport struct {
	Machine   string    `json:"machine"`
	Command   string    `json:"command"`
	Date      string    `json:"date"`
	DurationS float64   `json:"duration_s"`
	Rate      float64   `json:"rate_per_s"`
	WindowS   float64   `json:"window_s"`
	WarmupS   float64   `json:"warmup_s"`
	Burstlet  string    `json:"burstlet_build"` // the binary measured: its mtime, the tree's commit
	Results   []*result `json:"results"`
	// Webhook-added latency: each percentile of a webhook's configuration minus the same
	// percentile of "none".
	Added   map[string]stats `json:"added_over_none"`
	Targets map[string]bool  `json:"targets_met"`
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	logDir := filepath.Join(o.state, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	bins := map[string]string{"none": "", "peer": o.peerBin, "burstlet": o.burstletBin}
	for _, c := range o.configs {
		bin, ok := bins[c]
		if !ok {
			return fmt.Errorf("unknown configuration %q (none, peer, burstlet)", c)
		}
		if _, err := os.Stat(bin); bin != "" && err != nil {
			return fmt.Errorf("%s binary (`make bench-bin` builds the peer, `make build` burstlet): %w", c, err)
		}
	}
	tb, stopTestbed, err := testbed.Up(filepath.Join(o.root, "bin"), o.state)
	if err != nil {
		return err
	}
	defer stopTestbed()
	cs, err := clientset(tb.Cluster.AdminKubeconfig)
	if err != nil {
		return err
	}
	b := &bench{o: o, cs: cs, tb: tb, logDir: logDir}
	if err := b.setup(ctx); err != nil {
		return err
	}

	rep := &benchReport{Machine: report.Machine(), Command: o.command, Date: began.UTC().Format(time.RFC3339),
		Rate: o.rate, WindowS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(),
		Burstlet: buildInfo(o.root, o.burstletBin), Added: map[string]stats{}, Targets: map[string]bool{}}
	for _, c := range o.configs {
		var res *result
		switch c {
		case "none":
			res, err = b.runNone(ctx)
		case "peer":
			res, err = b.runPeer(ctx)
		case "burstlet":
			res, err = b.runBurstlet(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		printResult(res)
		rep.Results = append(rep.Results, res)
	}
	rep.DurationS = time.Since(began).Seconds()
	verdicts(rep)
	text := perfSection(rep, o)
	fmt.Print("\n" + text)
	if !o.write {
		return nil
	}
	if !o.keepRawSamples {
		for _, r := range rep.Results {
			r.SamplesMs = nil
		}
	}
	results := filepath.Join(o.root, "bench", "results")
	if err := os.MkdirAll(results, 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(results, "admission-latest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return report.WriteSection(filepath.Join(o.root, "docs", "perf.md"), "admission", text)
}

// clientset is an admin client without client-side rate limit, speaking protobuf, as the other
// drivers use: the load generator must limit the measurement as little as possible.
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

func ptr[T any](v T) *T { return &v }
