package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	benchreport "burstlet/bench/internal/report"
)

var order = []string{"burstlet", "upstream", "kwok"}

// rateRun is the steady-rate latency run of a system, if it was done.
func rateRun(rep *report, system string) *result {
	for _, r := range rep.Runs {
		if r.System == system && r.CreateRate > 0 {
			return r
		}
	}
	return nil
}

// verdicts checks DESIGN.md section 8's targets against this run; a target whose runs were
// not done is left out rather than guessed.
func verdicts(rep *report, o options) {
	b, k, u := rep.Systems["burstlet"], rep.Systems["kwok"], rep.Systems["upstream"]
	complete := b != nil && b.Running == b.Pods
	if b != nil && k != nil {
		rep.Targets["rate_ge_0.8x_kwok"] = complete && b.PodsPerS >= 0.8*k.PodsPerS
	}
	if b != nil && u != nil {
		rep.Targets["rate_ge_10x_upstream"] = complete && b.PodsPerS >= 10*u.PodsPerS
	}
	if r := rateRun(rep, "burstlet"); r != nil && o.rate == 100 {
		rep.Targets["p99_le_1s_at_100_pods_per_s"] = r.P99Ms != nil && *r.P99Ms <= 1000
	}
	if b != nil {
		rep.Targets["peak_rss_le_150mb"] = b.PeakRSSMB != nil && *b.PeakRSSMB <= 150
	}
}

func ms(v *float64) string {
	switch {
	case v == nil:
		return "not reached"
	case *v >= 10000:
		return fmt.Sprintf("%.0f s", *v/1000)
	case *v >= 1000:
		return fmt.Sprintf("%.2f s", *v/1000)
	default:
		return fmt.Sprintf("%.0f ms", *v)
	}
}

func num(v *float64, unit string, digits int) string {
	if v == nil {
		return "not measured"
	}
	return strconv.FormatFloat(*v, 'f', digits, 64) + " " + unit
}

func renderTable(rep *report) string {
	var b strings.Builder
	b.WriteString("| system | run | Running | all created after | all Running after | pods/s | p50 | p99 | CPU | peak RSS |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range order {
		for _, r := range rep.Runs {
			if r.System != name {
				continue
			}
			running := fmt.Sprintf("%d/%d", r.Running, r.Pods)
			switch {
			case r.TimedOut:
				running += " (wait capped)"
			case r.Exited != "":
				running += " (process exited: " + r.Exited + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.1f s | %.1f s | %.1f | %s | %s | %s | %s |\n", r.System, r.Run,
				running, r.CreateS, r.ElapsedS, r.PodsPerS, ms(r.P50Ms), ms(r.P99Ms), num(r.CPUS, "s", 2), num(r.PeakRSSMB, "MB", 1))
		}
	}
	return b.String()
}

func plotTitle(o options) string {
	return fmt.Sprintf("latency cdf: %d pods at %g/s (solid), %d at once (dashed)",
		o.ratePods, o.rate, o.pods)
}

func plotSeries(rep *report, o options) []series {
	var out []series
	for _, name := range order {
		if r := rateRun(rep, name); r != nil {
			out = append(out, series{label: legend(r), color: colorOf[name], sorted: r.Latencies, n: r.Pods})
		}
		if r := rep.Systems[name]; r != nil {
			out = append(out, series{label: legend(r), color: colorOf[name], dashed: true,
				sorted: r.Latencies, n: r.Pods})
		}
	}
	return out
}

func legend(r *result) string {
	return r.System + " " + strings.Replace(r.Run, " pods", "", 1)
}

// perfSection is the text between the burst markers of docs/perf.md.
func perfSection(rep *report, o options, table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Burst: pods bound to one node, burstlet vs upstream virtual-kubelet vs kwok\n\n")
	fmt.Fprintf(&b, "Command: `%s` (driver: `bench/burst/driver`), run %s; the whole run took %.0f min.\n",
		rep.Command, rep.Date, rep.DurationS/60)
	fmt.Fprintf(&b, "Machine: %s. Testbed: the cluster plane of `bin/testbed up` (kube-apiserver v1.36.3).\n\n", rep.Machine)
	fmt.Fprintf(&b, `How it is measured:

- Each system serves one node of %s CPU / %s / %d pods. The systems run one after another on
  the same testbed (%s), each doing %s.
- Pods: one container, bound directly (`+"`spec.nodeName`"+`, no scheduler), tolerating every
  taint; created by %d goroutines sharing one client-go clientset with no client-side rate limit.
- Latency bound→Running: from the moment the pod's Create request is sent (the pod is bound from
  the moment it exists; creationTimestamp has 1 s resolution) to the moment a client-go watch in
  the driver first sees phase Running. It includes the Create call (its p99 is
  `+"`create_call_p99_ms`"+` in the JSON). Percentiles are over all pods of the run; "not reached"
  means that share of pods never got Running.
- pods/s = pods Running / (first Create sent → last pod seen Running), or → the end of the wait
  when it was capped (%s per run; upstream %s).
- CPU: user+system time of the serving process from the first Create until it is idle again after
  the last pod is Running (under 5%% of a core over 1 s, at most 20 s). Peak RSS: VmHWM of that
  process. burstlet and upstream get a fresh process per run (their whole lifetime's peak); kwok is
  the testbed's long-running process, whose VmHWM is reset (`+"`clear_refs`"+`) when each run starts, and
  whose CPU includes the heartbeats of the testbed's two worker nodes.
- Between runs the process is stopped, the pods are force-deleted (grace 0) and waited for until
  gone; the next run starts a new process (kwok: the same one).

Systems:

`, nodeCPU, nodeMemory, nodePods, strings.Join(o.systems, ", then "), plansText(o), o.creators, o.limit, o.upstreamWait)
	for _, name := range order {
		if s, ok := rep.Settings[name]; ok {
			fmt.Fprintf(&b, "- %s: %s.\n", name, s)
		}
	}
	b.WriteString("\n" + table + "\n")
	b.WriteString("Targets (DESIGN.md section 8):\n\n")
	bs, ks, us := rep.Systems["burstlet"], rep.Systems["kwok"], rep.Systems["upstream"]
	if v, ok := rep.Targets["rate_ge_0.8x_kwok"]; ok {
		fmt.Fprintf(&b, "- %d pods at >= 0.8x kwok's rate: **%v** (burstlet %.1f pods/s, kwok %.1f: %.2fx).\n",
			o.pods, v, bs.PodsPerS, ks.PodsPerS, ratio(bs.PodsPerS, ks.PodsPerS))
	}
	if v, ok := rep.Targets["rate_ge_10x_upstream"]; ok {
		capped := ""
		if us.TimedOut || us.Exited != "" {
			capped = ", upstream's rate from the pods Running when its wait ended"
		}
		fmt.Fprintf(&b, "- %d pods at >= 10x upstream's rate: **%v** (burstlet %.1f pods/s, upstream %.1f: %.1fx%s).\n",
			o.pods, v, bs.PodsPerS, us.PodsPerS, ratio(bs.PodsPerS, us.PodsPerS), capped)
	}
	if v, ok := rep.Targets["p99_le_1s_at_100_pods_per_s"]; ok {
		floor := ""
		if k := rateRun(rep, "kwok"); k != nil {
			floor = fmt.Sprintf("; kwok, the floor, %s", ms(k.P99Ms))
		}
		fmt.Fprintf(&b, "- p99 bound→Running <= 1 s at 100 pods/s: **%v** (burstlet p99 %s%s).\n",
			v, ms(rateRun(rep, "burstlet").P99Ms), floor)
	}
	if v, ok := rep.Targets["peak_rss_le_150mb"]; ok {
		fmt.Fprintf(&b, "- Peak RSS <= 150 MB with %d pods: **%v** (%s). burstlet caches no ConfigMaps yet, so "+
			"the \"10,000 ConfigMaps cached\" half of this target is not exercised.\n", o.pods, v, num(bs.PeakRSSMB, "MB", 1))
	}
	b.WriteString("\nFrom this run's data:\n\n")
	for _, r := range rep.Runs {
		if line := observations(r); line != "" {
			b.WriteString(line)
		}
	}
	b.WriteString("\n![bound to Running latency CDF](../bench/results/burst-cdf.png)\n\n")
	b.WriteString("Raw results: `bench/results/burst-latest.json`; the processes' logs stay in `.state/bench-burst/logs/`.\n")
	return b.String()
}

func plansText(o options) string {
	var parts []string
	if o.ratePods > 0 {
		parts = append(parts, fmt.Sprintf("%d pods created at %g/s (latency under steady churn)", o.ratePods, o.rate))
	}
	if o.small > 0 && o.small != o.pods {
		parts = append(parts, fmt.Sprintf("%d pods created at once", o.small))
	}
	parts = append(parts, fmt.Sprintf("%d pods created at once (throughput)", o.pods))
	return strings.Join(parts, ", then ")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// observations lists, per run, what the numbers alone do not show: API requests per pod and
// problems in the process's log.
func observations(r *result) string {
	var notes []string
	if r.TimedOut {
		notes = append(notes, fmt.Sprintf("the wait was capped with %d of %d pods Running", r.Running, r.Pods))
	}
	if r.Exited != "" {
		notes = append(notes, "the process exited during the run ("+r.Exited+")")
	}
	if r.Failed > 0 {
		notes = append(notes, fmt.Sprintf("%d pods ended Failed", r.Failed))
	}
	if r.CreateFailures > 0 {
		notes = append(notes, fmt.Sprintf("%d pods could not be created", r.CreateFailures))
	}
	if syncs, ok := r.Metrics[`burstlet_pod_syncs_total{outcome="ok"}`]; ok {
		notes = append(notes, fmt.Sprintf("%.2f pod syncs per pod, %.0f failed syncs", syncs/float64(r.Pods),
			r.Metrics[`burstlet_pod_syncs_total{outcome="error"}`]))
	}
	if perVerb := requestsPerPod(r); perVerb != "" {
		notes = append(notes, "API requests per pod: "+perVerb)
	}
	if r.LogWarnings+r.LogErrors > 0 {
		s := fmt.Sprintf("its log has %d warnings and %d errors before it was stopped", r.LogWarnings, r.LogErrors)
		for _, m := range r.LogSamples {
			s += ", `" + strings.ReplaceAll(m, "`", "'") + "`"
		}
		notes = append(notes, s)
	}
	if len(notes) == 0 {
		return ""
	}
	return fmt.Sprintf("- %s, %s: %s.\n", r.System, r.Run, strings.Join(notes, "; "))
}

// requestsPerPod sums burstlet_api_requests_total by verb (and code, unless 2xx): per pod
// for the verbs used about once per pod or more, as a total for the rest.
func requestsPerPod(r *result) string {
	byVerb := map[string]float64{}
	for k, v := range r.Metrics {
		if !strings.HasPrefix(k, "burstlet_api_requests_total{") {
			continue
		}
		verb := benchreport.LabelValue(k, "verb")
		if code := benchreport.LabelValue(k, "code"); !strings.HasPrefix(code, "2") {
			verb += " " + code
		}
		byVerb[verb] += v
	}
	var keys []string
	for k := range byVerb {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var perPod, rest []string
	for _, k := range keys {
		if n := byVerb[k]; n >= 0.5*float64(r.Pods) {
			perPod = append(perPod, fmt.Sprintf("%s %.2f", k, n/float64(r.Pods)))
		} else {
			rest = append(rest, fmt.Sprintf("%s %.0f", k, n))
		}
	}
	out := strings.Join(perPod, ", ")
	if len(rest) > 0 {
		out += " (other requests in the whole run: " + strings.Join(rest, ", ") + ")"
	}
	return out
}
