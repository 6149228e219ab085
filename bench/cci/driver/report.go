package main

import (
	"fmt"
	"sort"
	"strings"

	"burstlet/bench/internal/podload"
)

// verdicts checks DESIGN.md section 8's backend-path target: <= 3 backend writes per pod on
// average over the pod's life. It counts as met only when every pod got Running and every pod
// was gone again, so that the writes cover whole lives.
func verdicts(rep *benchReport) {
	b, p := rep.Burstlet, rep.Peer
	complete := b.Running == b.Pods && b.Exited == ""
	if p != nil && complete && p.Running == p.Pods && p.ElapsedS > 0 {
		rep.TimeRatio = ptr(podload.Round(b.ElapsedS/p.ElapsedS, 2))
	}
	life := rep.Process.Life
	rep.Targets["backend_writes_per_pod_le_3"] = life != nil && complete && b.DeleteS != nil &&
		life.BackendWritesPerPod <= 3
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

func seconds(v *float64) string {
	if v == nil {
		return "not reached"
	}
	return fmt.Sprintf("%.1f s", *v)
}

func timeTable(rep *benchReport) string {
	var b strings.Builder
	b.WriteString("| path | pods | Running | all created after | all Running after | pods/s | p50 | p99 | all deleted after |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range []*result{rep.Burstlet, rep.Peer} {
		if r == nil {
			continue
		}
		name := "burstlet: cluster → cci provider → backend"
		if r != rep.Burstlet {
			name = "backend directly (client-go, no burstlet)"
		}
		running := fmt.Sprintf("%d/%d", r.Running, r.Pods)
		switch {
		case r.Exited != "":
			running += " (burstlet exited: " + r.Exited + ")"
		case r.TimedOut:
			running += " (wait capped)"
		}
		deleted := seconds(r.DeleteS)
		if r.DeleteTimedOut {
			deleted = fmt.Sprintf("not reached (%d pods left, %d on the backend)", r.ClusterLeft, r.BackendLeft)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.1f s | %.1f s | %.1f | %s | %s | %s |\n", name, r.Pods, running,
			r.CreateS, r.ElapsedS, r.PodsPerS, ms(r.P50Ms), ms(r.P99Ms), deleted)
	}
	return b.String()
}

func byVerb(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Most frequent first.
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %.0f", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func writesTable(pr *process) string {
	var b strings.Builder
	b.WriteString("| burstlet's requests | writes while creating | per pod | writes over create + delete | per pod | all requests over create + delete (verb code: count) |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	cell := func(r *requests, backend bool) (string, string) {
		if r == nil {
			return "not measured", "-"
		}
		if backend {
			return fmt.Sprintf("%.0f", r.BackendWrites), fmt.Sprintf("%.2f", r.BackendWritesPerPod)
		}
		return fmt.Sprintf("%.0f", r.ClusterWrites), fmt.Sprintf("%.2f", r.ClusterWritesPerPod)
	}
	for _, backend := range []bool{false, true} {
		name := "to the cluster (`burstlet_api_requests_total`)"
		if backend {
			name = "to the backend (`burstlet_backend_requests_total`)"
		}
		cw, cp := cell(pr.Create, backend)
		lw, lp := cell(pr.Life, backend)
		all := "not measured"
		if pr.Life != nil {
			all = byVerb(pr.Life.Cluster)
			if backend {
				all = byVerb(pr.Life.Backend)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, cw, cp, lw, lp, all)
	}
	return b.String()
}

// perfSection is the text between the cci markers of docs/perf.md.
func perfSection(rep *benchReport, o options) string {
	var b strings.Builder
	bt, pr := rep.Burstlet, rep.Process
	fmt.Fprintf(&b, "## CCI backend path: %d pods through burstlet's cci provider vs straight to the backend\n\n", rep.Pods)
	fmt.Fprintf(&b, "Command: `%s` (driver: `bench/cci/driver`), run %s; the whole run took %.0f min.\n",
		rep.Command, rep.Date, rep.DurationS/60)
	fmt.Fprintf(&b, "Machine: %s. Testbed: both planes of `bin/testbed up` (kube-apiserver v1.36.3 each): the "+
		"cluster, and the backend standing in for CCI (its scheduler, and 2 kwok fleet nodes that mark pods Running).\n\n",
		rep.Machine)
	fmt.Fprintf(&b, `How it is measured:

- burstlet: %s,
  the config file being `+"`%s`"+`
  (backend namespace `+"`%s`"+`); burstlet's ServiceAccount identities on both planes (deploy/rbac).
- Pods: %d bare pods created at once by %d goroutines sharing one client-go clientset (no client-side rate
  limit), each selecting the virtual node (`+"`nodeSelector kubernetes.io/hostname=%s`"+`, tolerating
  `+"`virtual-kubelet.io/provider`"+`) so the cluster's scheduler binds it, with one container requesting 250m CPU /
  512Mi and mounting one ConfigMap that all pods share (burstlet copies it to the backend once). Bare pods rather than
  a Deployment: a ReplicaSet controller creates pods in slow-start batches (1, 2, 4, ..., at most 500 per sync),
  which would set the pace instead of burstlet.
- Time to Running: first Create sent → last pod seen Running by a client-go watch on the cluster namespace;
  p50/p99 per pod from its Create to Running. Deletion: every pod deleted as `+"`kubectl delete`"+` does (graceful);
  first Delete sent → no pod left in the cluster namespace nor in the backend namespace.
- Backend floor: the same %d pods (no node selector) created the same way straight on the backend plane in
  namespace `+"`%s`"+`, before burstlet starts: the backend's scheduler binds them and kwok marks them Running,
  seen by a watch on the backend; then deleted the same way and waited for until gone. Each path has the backend to
  itself.
- Requests: the increase of burstlet's counters `+"`burstlet_api_requests_total{verb,code}`"+` (cluster) and
  `+"`burstlet_backend_requests_total{verb,code}`"+` (backend) on its /metrics. Writes are every verb but GET, LIST and
  WATCH (so POST, PUT, PATCH, DELETE), whatever the answer. "While creating": from just before the first Create
  until all pods are Running and burstlet is idle (under 5%% of a core over 1 s, at most 20 s); "create + delete":
  from the same start until every pod is gone on both sides and burstlet is idle again. burstlet's startup (node,
  lease, backend namespace) comes before and is not counted. The backend copy of the ConfigMap is deleted by
  burstlet's periodic sweep (every 30 s, once unreferenced in two sweeps in a row): one write per ConfigMap, not per
  pod, not waited for.
- CPU: burstlet's user+system time over the same intervals. Peak RSS: its VmHWM at the end (its whole life).

`, pr.Settings, pr.Config, backendNamespace, rep.Pods, o.creators,
		nodeName, rep.Pods, peerNamespace)
	b.WriteString(timeTable(rep) + "\n")
	if rep.TimeRatio != nil {
		fmt.Fprintf(&b, "burstlet's time to all Running is %.2fx the backend's own (%.1f s against %.1f s).\n\n",
			*rep.TimeRatio, bt.ElapsedS, rep.Peer.ElapsedS)
	}
	b.WriteString(writesTable(pr) + "\n")
	fmt.Fprintf(&b, "burstlet process: CPU %s while creating, %s over create + delete; peak RSS %s.\n\n",
		num(pr.CPUCreateS, "s", 2), num(pr.CPUS, "s", 2), num(pr.PeakRSSMB, "MB", 1))
	b.WriteString("Target (DESIGN.md section 8):\n\n")
	met := rep.Targets["backend_writes_per_pod_le_3"]
	if pr.Life != nil {
		fmt.Fprintf(&b, "- Backend path: <= 3 backend writes per pod on average over the pod's life: **%v** "+
			"(%.2f backend writes per pod over create + delete, %s while creating).", met,
			pr.Life.BackendWritesPerPod, backendPerPod(pr.Create))
		if !met && (bt.Running < bt.Pods || bt.DeleteS == nil) {
			b.WriteString(" Not met because not every pod completed its life in this run (see above).")
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "- Backend path: <= 3 backend writes per pod on average over the pod's life: **false** "+
			"(not measured: burstlet's counters over the pods' life could not be read).\n")
	}
	b.WriteString("\nFrom this run's data:\n\n")
	for _, line := range observations(rep) {
		b.WriteString("- " + line + "\n")
	}
	b.WriteString("\nRaw results: `bench/results/cci-latest.json`; burstlet's log and config stay in `.state/bench-cci/logs/`.\n")
	return b.String()
}

func num(v *float64, unit string, digits int) string {
	if v == nil {
		return "not measured"
	}
	return fmt.Sprintf("%.*f %s", digits, *v, unit)
}

// observations are what the tables do not show: startup requests, pod syncs, copies left,
// stuck pods and problems in burstlet's log.
func observations(rep *benchReport) []string {
	bt, pr := rep.Burstlet, rep.Process
	var out []string
	if s := pr.Startup; s != nil {
		out = append(out, fmt.Sprintf("burstlet's startup, before the first pod (not counted above): cluster writes %.0f "+
			"(%s), backend writes %.0f (%s).", s.ClusterWrites, byVerb(writesOnly(s.Cluster)), s.BackendWrites,
			byVerb(writesOnly(s.Backend))))
	}
	out = append(out, fmt.Sprintf("burstlet: %.2f pod syncs per pod, %.0f failed syncs; %d of %d backend pods seen "+
		"Running when the cluster's were.", pr.PodSyncsOK/float64(rep.Pods), pr.PodSyncsError, bt.BackendRunning, rep.Pods))
	if bt.BackendCopies != nil {
		out = append(out, fmt.Sprintf("ConfigMaps burstlet left in the backend namespace at the end: %d (%s); copies stay "+
			"until the sweep finds them unreferenced.", len(bt.BackendCopies), strings.Join(bt.BackendCopies, ", ")))
	}
	if bt.Exited != "" {
		s := "burstlet exited during the run (" + bt.Exited + ")"
		if n := len(pr.LogTail); n > 0 {
			s += "; the last line of its log: `" + strings.ReplaceAll(pr.LogTail[n-1], "`", "'") + "`"
		}
		out = append(out, s+".")
	}
	for _, r := range []*result{rep.Burstlet, rep.Peer} {
		if r == nil {
			continue
		}
		if r.CreateFailures > 0 {
			out = append(out, fmt.Sprintf("%s: %d pods could not be created.", r.Path, r.CreateFailures))
		}
		if r.Failed > 0 {
			out = append(out, fmt.Sprintf("%s: %d pods ended Failed.", r.Path, r.Failed))
		}
		for _, s := range r.Stuck {
			out = append(out, fmt.Sprintf("%s, not Running when the wait ended: `%s`", r.Path, strings.ReplaceAll(s, "`", "'")))
		}
	}
	if pr.LogWarnings+pr.LogErrors > 0 {
		s := fmt.Sprintf("burstlet's log has %d warnings and %d errors before it was stopped", pr.LogWarnings, pr.LogErrors)
		for _, m := range pr.LogSamples {
			s += ", `" + strings.ReplaceAll(m, "`", "'") + "`"
		}
		out = append(out, s+".")
	} else {
		out = append(out, "burstlet's log has no warnings or errors before it was stopped.")
	}
	return out
}

func writesOnly(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if isWrite(strings.SplitN(k, " ", 2)[0]) {
			out[k] = v
		}
	}
	return out
}

func backendPerPod(r *requests) string {
	if r == nil {
		return "not measured"
	}
	return fmt.Sprintf("%.2f", r.BackendWritesPerPod)
}
