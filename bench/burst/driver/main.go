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
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"burstlet/bench/internal/podload"
	"burstlet/bench/internal/proc"
	benchreport "burstlet/bench/internal/report"
	"burstlet/bench/internal/testbed"
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
	System     string  `json:"system"`
	Run        string  `json:"run"`
	Pods       int     `json:"pods"`
	CreateRate float64 `json:"create_rate_per_s"` // 0: all at once
	podload.Outcome
	CPUS        *float64           `json:"cpu_s"`
	PeakRSSMB   *float64           `json:"peak_rss_mb"`
	NotMeasured string             `json:"not_measured,omitempty"`
	LogWarnings int                `json:"log_warnings,omitempty"`
	LogErrors   int                `json:"log_errors,omitempty"`
	LogSamples  []string           `json:"log_samples,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
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
	tb, stopTestbed, err := testbed.Up(bin, state)
	if err != nil {
		return err
	}
	defer stopTestbed()
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
	if err := podload.EnsureNamespace(ctx, cs, namespace); err != nil {
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

	rep := &report{Pods: o.pods, Machine: benchreport.Machine(), Command: o.command,
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
	return benchreport.WriteSection(filepath.Join(o.root, "docs", "perf.md"), "burst", perfSection(rep, o, table))
}

// measure runs one plan against one system: start (or find) its process, create the pods,
// wait until they are all Running, read CPU and memory, stop, and delete the pods.
func measure(ctx context.Context, cs kubernetes.Interface, sys *system, p plan, run string,
	creators int, wait time.Duration) (*result, error) {
	fmt.Printf("%s: %v\n", sys.name, p)
	sp, err := sys.start(ctx, run)
	if err != nil {
		if sp != nil {
			sp.Stop()
		}
		return nil, err
	}
	defer sp.Stop()
	res := &result{System: sys.name, Run: p.String(), Pods: p.pods, CreateRate: p.rate}
	if !sys.fresh {
		// kwok lives as long as the testbed: count only this run's peak.
		if err := sp.ResetPeakRSS(); err != nil {
			res.NotMeasured = "peak RSS is kwok's lifetime peak: " + err.Error()
		}
	}
	// Sampled while the run goes on, so that a process that dies still leaves its last values.
	cpu0, err := sp.CPUSeconds()
	if err != nil {
		return nil, err
	}
	var cpu, rss float64
	sample := func() {
		if c, err := sp.CPUSeconds(); err == nil {
			cpu = c - cpu0
		}
		if r, err := sp.PeakRSSMB(); err == nil {
			rss = r
		}
	}
	obs, err := podload.Observe(cs, namespace, "run="+run)
	if err != nil {
		return nil, err
	}
	defer obs.Close()

	creating := podload.StartCreate(ctx, cs, namespace, p.pods, p.rate, creators,
		func(i int) *corev1.Pod { return benchPod(run, sys.node, i) })
	timedOut, exited := obs.WaitAll(ctx, creating.Want, time.Now().Add(wait), sp.Exited, sys.name, sample)
	stopWait := time.Now()
	res.TimedOut = timedOut
	if exited {
		res.Exited = fmt.Sprint(sp.Err())
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	c := creating.Wait()
	if !res.TimedOut && res.Exited == "" {
		sp.Settle(20 * time.Second)
	}
	sample()

	// Only what was seen while waiting counts, also when a capped run goes on meanwhile.
	obs.Measure(func(i int) string { return podName(run, i) }, c, p.pods, stopWait,
		res.TimedOut || res.Exited != "", &res.Outcome)
	res.CPUS, res.PeakRSSMB = ptr(podload.Round(cpu, 2)), ptr(podload.Round(rss, 1))
	if sys.metricsURL != "" && res.Exited == "" {
		res.Metrics = benchreport.Scrape(sys.metricsURL)
	}
	if sp.Log != "" {
		// What the process logs once told to stop (cancelled requests) is not load.
		logged := proc.LogSize(sp.Log)
		sp.Stop()
		res.LogWarnings, res.LogErrors, res.LogSamples = proc.LogProblems(sp.Log, logged)
	}
	fmt.Printf("  %s: created in %.1fs, %d/%d Running in %.1fs (%.0f pods/s), p50 %s p99 %s, CPU %.1fs, peak RSS %.0f MB\n",
		p, res.CreateS, res.Running, p.pods, res.ElapsedS, res.PodsPerS, ms(res.P50Ms), ms(res.P99Ms), cpu, rss)
	return res, podload.ForceDelete(context.Background(), cs, namespace, "app=burst", creators)
}

func ptr(v float64) *float64 { return &v }
