// Command driver runs the burst benchmark: pods bound straight to one node, served in turn by
// burstlet (fake provider), upstream virtual-kubelet (mock provider) and kwok, on one testbed
// in one run. For each system it measures, with a client-go watch, when every pod turns
// Running: 1,000 pods created at 100/s (latency under steady churn), then 1,000 and N pods
// created all at once (throughput), with the serving process's CPU time and peak RSS. It
// writes bench/results/burst-latest.json, bench/results/burst-cdf.png and the burst section
// of docs/perf.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const namespace = "bench-burst"

type options struct {
	root, command       string
	upstreamBin         string
	upstreamVersion     string
	pods, small         int
	ratePods            int
	rate                float64
	creators            int
	limit, upstreamWait time.Duration
	systems             []string
	write               bool
}

func main() {
	var o options
	var systems string
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.StringVar(&o.upstreamBin, "upstream-bin", "bin/upstream-vk/v1.14.1/virtual-kubelet", "upstream virtual-kubelet binary")
	flag.StringVar(&o.upstreamVersion, "upstream-version", "v1.14.1", "its version, for the record")
	flag.IntVar(&o.pods, "pods", 10000, "pods of the large throughput run")
	flag.IntVar(&o.small, "small", 1000, "pods of the small throughput run (0: none)")
	flag.IntVar(&o.ratePods, "rate-pods", 1000, "pods of the steady-rate latency run (0: none)")
	flag.Float64Var(&o.rate, "rate", 100, "pods per second of the latency run")
	flag.IntVar(&o.creators, "creators", 32, "goroutines creating pods")
	flag.DurationVar(&o.limit, "wait", 5*time.Minute, "longest wait for one run's pods (burstlet, kwok)")
	flag.DurationVar(&o.upstreamWait, "upstream-wait", 15*time.Minute, "longest wait for one run's pods (upstream)")
	flag.StringVar(&systems, "systems", "kwok,burstlet,upstream", "systems to run, in this order")
	flag.BoolVar(&o.write, "write", true, "write bench/results and docs/perf.md")
	flag.StringVar(&o.command, "command", "make bench-burst", "the command line to record")
	flag.Parse()
	o.systems = strings.Split(systems, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-burst:", err)
		os.Exit(1)
	}
}

// result is one system's run. Pointers are null in the JSON when not measured or not reached.
type result struct {
	System         string             `json:"system"`
	Run            string             `json:"run"`
	Pods           int                `json:"pods"`
	CreateRate     float64            `json:"create_rate_per_s"` // 0: all at once
	Running        int                `json:"running"`
	Failed         int                `json:"failed,omitempty"`
	CreateFailures int                `json:"create_failures,omitempty"`
	TimedOut       bool               `json:"timed_out,omitempty"`
	Exited         string             `json:"exited,omitempty"`
	CreateS        float64            `json:"create_s"`           // first Create sent to last answered
	CreateCallP99  float64            `json:"create_call_p99_ms"` // included in every latency
	ElapsedS       float64            `json:"elapsed_s"`          // first Create sent to last pod Running
	PodsPerS       float64            `json:"pods_per_s"`         // Running / elapsed_s
	P50Ms          *float64           `json:"p50_ms"`
	P90Ms          *float64           `json:"p90_ms"`
	P99Ms          *float64           `json:"p99_ms"`
	MaxMs          *float64           `json:"max_ms"`
	CPUS           *float64           `json:"cpu_s"`
	PeakRSSMB      *float64           `json:"peak_rss_mb"`
	NotMeasured    string             `json:"not_measured,omitempty"`
	LogWarnings    int                `json:"log_warnings,omitempty"`
	LogErrors      int                `json:"log_errors,omitempty"`
	LogSamples     []string           `json:"log_samples,omitempty"`
	Metrics        map[string]float64 `json:"metrics,omitempty"`

	latencies []float64
}

type report struct {
	Pods      int                `json:"pods"`
	Machine   string             `json:"machine"`
	Command   string             `json:"command"`
	Date      string             `json:"date"`
	DurationS float64            `json:"duration_s"`
	Systems   map[string]*result `json:"systems"` // the run of `pods` pods created at once
	Settings  map[string]string  `json:"settings"`
	Runs      []*result          `json:"runs"`
	Targets   map[string]bool    `json:"targets_met"`
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	bin := filepath.Join(o.root, "bin")
	state := filepath.Join(o.root, ".state", "bench-burst")
	logDir := filepath.Join(state, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	// `testbed up` stops whatever testbed its state directory records, so a second run would
	// silently break the first: hold a lock for the whole run instead.
	lock, err := os.OpenFile(filepath.Join(state, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("another bench-burst holds %s: %w", lock.Name(), err)
	}
	if err := sh(filepath.Join(bin, "testbed"), "up", "--state", state); err != nil {
		return err
	}
	defer func() { _ = sh(filepath.Join(bin, "testbed"), "down", "--state", state, "--wipe") }()
	tb, err := loadTestbed(state)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", tb.Cluster.AdminKubeconfig)
	if err != nil {
		return err
	}
	// No client-side rate limit, and protobuf, which costs the API server less than JSON: pod
	// creation must limit the measurement as little as possible on a 2-core machine.
	cfg.QPS, cfg.Burst = -1, -1
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensureNamespace(ctx, cs); err != nil {
		return err
	}

	all := map[string]func() (*system, error){
		"kwok": func() (*system, error) { return kwokSystem(cs, tb), nil },
		"burstlet": func() (*system, error) {
			return burstletSystem(cs, filepath.Join(o.root, "build", "release", "src", "cmd", "burstlet", "burstlet"), tb, logDir)
		},
		"upstream": func() (*system, error) {
			return upstreamSystem(cs, o.upstreamBin, o.upstreamVersion, tb, logDir)
		},
	}
	var plans []plan
	if o.ratePods > 0 {
		plans = append(plans, plan{pods: o.ratePods, rate: o.rate})
	}
	if o.small > 0 && o.small != o.pods {
		plans = append(plans, plan{pods: o.small})
	}
	plans = append(plans, plan{pods: o.pods})

	rep := &report{Pods: o.pods, Machine: machine(), Command: o.command,
		Date: began.UTC().Format(time.RFC3339), Systems: map[string]*result{},
		Settings: map[string]string{}, Targets: map[string]bool{}}
	for _, name := range o.systems {
		mk, ok := all[name]
		if !ok {
			return fmt.Errorf("unknown system %q", name)
		}
		sys, err := mk()
		if err != nil {
			return err
		}
		rep.Settings[name] = sys.settings
		wait := o.limit
		if name == "upstream" {
			wait = o.upstreamWait
		}
		for i, p := range plans {
			res, err := measure(ctx, cs, sys, p, fmt.Sprintf("%s-r%d", name, i+1), o.creators, wait)
			if err != nil {
				sys.cleanup(context.Background())
				return fmt.Errorf("%s, %v: %w", name, p, err)
			}
			rep.Runs = append(rep.Runs, res)
			if p.rate == 0 && p.pods == o.pods {
				rep.Systems[name] = res
			}
		}
		sys.cleanup(ctx)
	}
	rep.DurationS = time.Since(began).Seconds()
	verdicts(rep, o)
	table := renderTable(rep)
	fmt.Print(table)
	if !o.write {
		return nil
	}
	results := filepath.Join(o.root, "bench", "results")
	if err := os.MkdirAll(results, 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(filepath.Join(results, "burst-latest.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeCDF(filepath.Join(results, "burst-cdf.png"), plotTitle(o), plotSeries(rep, o)); err != nil {
		return err
	}
	return writeSection(filepath.Join(o.root, "docs", "perf.md"), "burst", perfSection(rep, o, table))
}

// measure runs one plan against one system: start (or find) its process, create the pods,
// wait until they are all Running, read CPU and memory, stop, and delete the pods.
func measure(ctx context.Context, cs kubernetes.Interface, sys *system, p plan, run string,
	creators int, wait time.Duration) (*result, error) {
	fmt.Printf("%s: %v\n", sys.name, p)
	proc, err := sys.start(ctx, run)
	if err != nil {
		if proc != nil {
			proc.stop()
		}
		return nil, err
	}
	defer proc.stop()
	res := &result{System: sys.name, Run: p.String(), Pods: p.pods, CreateRate: p.rate}
	if !sys.fresh {
		// kwok lives as long as the testbed: count only this run's peak.
		if err := proc.resetPeakRSS(); err != nil {
			res.NotMeasured = "peak RSS is kwok's lifetime peak: " + err.Error()
		}
	}
	// Sampled while the run goes on, so that a process that dies still leaves its last values.
	cpu0, err := proc.cpuSeconds()
	if err != nil {
		return nil, err
	}
	var cpu, rss float64
	sample := func() {
		if c, err := proc.cpuSeconds(); err == nil {
			cpu = c - cpu0
		}
		if r, err := proc.peakRSSMB(); err == nil {
			rss = r
		}
	}
	obs, err := observe(cs, namespace, run)
	if err != nil {
		return nil, err
	}
	defer close(obs.stop)

	created := make(chan *creation, 1)
	go func() { created <- createPods(ctx, cs, namespace, run, sys.node, p, creators) }()
	var c *creation
	want := func() int { // all pods, less those whose creation failed once that is known
		if c == nil {
			select {
			case c = <-created:
			default:
				return p.pods
			}
		}
		return p.pods - c.failures
	}
	timedOut, exited := obs.waitAll(ctx, want, time.Now().Add(wait), proc, sys.name, sample)
	stopWait := time.Now()
	res.TimedOut = timedOut
	if exited {
		res.Exited = fmt.Sprint(proc.err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if c == nil {
		c = <-created
	}
	if !res.TimedOut && res.Exited == "" {
		proc.settle(20 * time.Second)
	}
	sample()

	// Only what was seen while waiting counts, also when a capped run goes on meanwhile.
	lat, last := obs.latencies(run, c, stopWait)
	res.latencies = lat
	res.Running, res.Failed = len(lat), obs.failedCount()
	res.CreateFailures = c.failures
	res.CreateS = round(c.elapsed.Seconds(), 2)
	res.CreateCallP99 = callP99(c)
	first := firstSent(c)
	end := last
	if res.TimedOut || res.Exited != "" || res.Running < p.pods {
		end = stopWait
	}
	res.ElapsedS = round(end.Sub(first).Seconds(), 2)
	if res.ElapsedS > 0 {
		res.PodsPerS = round(float64(res.Running)/end.Sub(first).Seconds(), 1)
	}
	res.P50Ms = percentile(lat, p.pods, 0.50)
	res.P90Ms = percentile(lat, p.pods, 0.90)
	res.P99Ms = percentile(lat, p.pods, 0.99)
	res.MaxMs = percentile(lat, p.pods, 1)
	res.CPUS, res.PeakRSSMB = ptr(round(cpu, 2)), ptr(round(rss, 1))
	if sys.metricsURL != "" && res.Exited == "" {
		res.Metrics = scrape(sys.metricsURL)
	}
	if proc.log != "" {
		// What the process logs once told to stop (cancelled requests) is not load.
		logged := logSize(proc.log)
		proc.stop()
		res.LogWarnings, res.LogErrors, res.LogSamples = logProblems(proc.log, logged)
	}
	fmt.Printf("  %s: created in %.1fs, %d/%d Running in %.1fs (%.0f pods/s), p50 %s p99 %s, CPU %.1fs, peak RSS %.0f MB\n",
		p, res.CreateS, res.Running, p.pods, res.ElapsedS, res.PodsPerS, ms(res.P50Ms), ms(res.P99Ms), cpu, rss)
	return res, deletePods(context.Background(), cs, namespace, creators)
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods are admitted once the namespace's default ServiceAccount exists.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if _, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no default ServiceAccount in %s", namespace)
		}
	}
}

func firstSent(c *creation) time.Time {
	var first time.Time
	for _, t := range c.sent {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

func ptr(v float64) *float64 { return &v }

func round(v float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}
