package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"burstlet/bench/internal/podload"
	"burstlet/bench/internal/proc"
	"burstlet/bench/internal/report"
	"burstlet/bench/internal/testbed"
)

// runPeer creates the pods straight on the backend plane (its scheduler binds them to the kwok
// fleet, kwok marks them Running) and deletes them again: what the backend costs by itself.
func runPeer(ctx context.Context, bs kubernetes.Interface, o options) (*result, error) {
	if err := podload.EnsureNamespace(ctx, bs, peerNamespace); err != nil {
		return nil, err
	}
	if _, err := bs.CoreV1().ConfigMaps(peerNamespace).Create(ctx, configMap(), metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	obs, err := podload.Observe(bs, peerNamespace, "app="+appLabel)
	if err != nil {
		return nil, err
	}
	defer obs.Close()
	never := func() bool { return false }
	res, c, err := createAndWait(ctx, bs, obs, peerNamespace, o, false, never, "backend directly", func() {})
	if err != nil {
		return nil, err
	}
	res.Path = "backend directly"
	if res.Running+res.Failed < res.Pods-res.CreateFailures {
		res.Stuck = stuck(obs.Pods(), 5)
	}
	deleteAndWait(ctx, bs, peerNamespace, c, o, func() (int, int) { return obs.Len(), 0 }, never, res)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if res.DeleteTimedOut {
		// Gone before burstlet's run, whatever happened.
		if err := podload.ForceDelete(context.Background(), bs, peerNamespace, "app="+appLabel, o.creators); err != nil {
			return nil, err
		}
	}
	printResult(res)
	return res, nil
}

// runBurstlet starts burstlet with the cci provider, creates the pods on its virtual node,
// waits until all are Running in the cluster, then deletes them and waits until none is left
// on either side, reading burstlet's request counters before, between and after.
func runBurstlet(ctx context.Context, cs, bs kubernetes.Interface, tb *testbed.State, bin, logDir string,
	o options) (*result, *process, error) {
	cfgText := "provider:\n  name: cci\n  cci:\n    kubeconfig: %s\n    clusterID: " + clusterID + "\n"
	cfgPath := filepath.Join(logDir, "burstlet-cci.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(cfgText, tb.Backend.BurstletKubeconfig)), 0o644); err != nil {
		return nil, nil, err
	}
	health, err := proc.FreeAddr()
	if err != nil {
		return nil, nil, err
	}
	kubeletAPI, err := proc.FreeAddr()
	if err != nil {
		return nil, nil, err
	}
	args := []string{"run", "--config", cfgPath, "--kubeconfig", tb.Cluster.BurstletKubeconfig,
		"--node-name", nodeName, "--node-ip", "127.0.0.1", "--health-listen", health,
		"--kubelet-listen", kubeletAPI,
		"--workers", fmt.Sprint(workers), "--threads", fmt.Sprint(threads)}
	pr := &process{
		Settings: fmt.Sprintf("`burstlet run --config <cci.yaml> --kubeconfig <cluster burstlet.kubeconfig> "+
			"--node-name %s --node-ip 127.0.0.1 --health-listen 127.0.0.1:<port> --workers %d --threads %d`",
			nodeName, workers, threads),
		Config: "provider: {name: cci, cci: {kubeconfig: <backend burstlet.kubeconfig>, clusterID: " + clusterID + "}}",
	}
	sp, err := proc.Start(bin, args, nil, filepath.Join(logDir, "burstlet.log"))
	if err != nil {
		return nil, nil, err
	}
	defer sp.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	err = proc.WaitUntil(ctx, sp, 2*time.Minute, "burstlet /readyz", func() error {
		resp, err := client.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return podload.NodeReady(ctx, cs, nodeName)
	})
	if err != nil {
		return nil, nil, err
	}

	// The namespace and its ConfigMap exist before the pods, as they would in a real cluster.
	if err := podload.EnsureNamespace(ctx, cs, clusterNamespace); err != nil {
		return nil, nil, err
	}
	if _, err := cs.CoreV1().ConfigMaps(clusterNamespace).Create(ctx, configMap(), metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return nil, nil, err
	}
	backendObs, err := podload.Observe(bs, backendNamespace, "")
	if err != nil {
		return nil, nil, err
	}
	defer backendObs.Close()
	clusterObs, err := podload.Observe(cs, clusterNamespace, "app="+appLabel)
	if err != nil {
		return nil, nil, err
	}
	defer clusterObs.Close()
	metricsURL := "http://" + health + "/metrics"
	m0 := report.Scrape(metricsURL)
	if m0 == nil {
		return nil, nil, fmt.Errorf("no answer from %s", metricsURL)
	}
	pr.Startup = requestsBetween(nil, m0, o.pods)

	// Sampled while the run goes on, so that a process that dies still leaves its last values.
	cpu0, err := sp.CPUSeconds()
	if err != nil {
		return nil, nil, err
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
	sample()
	res, c, err := createAndWait(ctx, cs, clusterObs, clusterNamespace, o, true, sp.Exited, "burstlet", sample)
	if err != nil {
		return nil, nil, err
	}
	res.Path = "burstlet"
	res.BackendRunning, _ = backendObs.Counts()
	if res.Running+res.Failed < res.Pods-res.CreateFailures {
		res.Stuck = stuck(clusterObs.Pods(), 5)
	}
	last := m0
	if sp.Exited() {
		res.Exited = fmt.Sprint(sp.Err())
	} else {
		if !res.TimedOut {
			sp.Settle(20 * time.Second)
		}
		sample()
		pr.CPUCreateS = ptr(podload.Round(cpu, 2))
		if m1 := report.Scrape(metricsURL); m1 != nil {
			pr.Create = requestsBetween(m0, m1, o.pods)
			last = m1
		}
		printResult(res)

		fmt.Printf("burstlet (cci provider): deleting %d pods\n", o.pods)
		left := func() (int, int) { return clusterObs.Len(), backendObs.Len() }
		deleteAndWait(ctx, cs, clusterNamespace, c, o, left, sp.Exited, res)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if sp.Exited() {
			res.Exited = fmt.Sprint(sp.Err())
		} else {
			if !res.DeleteTimedOut {
				sp.Settle(20 * time.Second)
			}
			sample()
			pr.CPUS = ptr(podload.Round(cpu, 2))
			if m2 := report.Scrape(metricsURL); m2 != nil {
				pr.Life = requestsBetween(m0, m2, o.pods)
				last = m2
			}
		}
	}
	sample()
	if rss > 0 {
		pr.PeakRSSMB = ptr(podload.Round(rss, 1))
	}
	if list, err := bs.CoreV1().ConfigMaps(backendNamespace).List(context.Background(), metav1.ListOptions{}); err == nil {
		res.BackendCopies = []string{}
		for _, cm := range list.Items {
			if cm.Name != "kube-root-ca.crt" { // the backend's own, in every namespace
				res.BackendCopies = append(res.BackendCopies, cm.Name)
			}
		}
	}
	pr.PodSyncsOK = last[`burstlet_pod_syncs_total{outcome="ok"}`] - m0[`burstlet_pod_syncs_total{outcome="ok"}`]
	pr.PodSyncsError = last[`burstlet_pod_syncs_total{outcome="error"}`] - m0[`burstlet_pod_syncs_total{outcome="error"}`]
	pr.Metrics = last
	// What the process logs once told to stop (cancelled requests) is not load.
	logged := proc.LogSize(sp.Log)
	sp.Stop()
	pr.LogWarnings, pr.LogErrors, pr.LogSamples = proc.LogProblems(sp.Log, logged)
	if res.Exited != "" {
		pr.LogTail = strings.Split(proc.Tail(sp.Log), "\n")
		fmt.Printf("  burstlet exited (%s); the end of its log:\n    %s\n", res.Exited, strings.Join(pr.LogTail, "\n    "))
	}
	printResult(res)
	fmt.Printf("  burstlet: CPU %.1fs, peak RSS %.0f MB, log: %d warnings, %d errors\n", cpu, rss,
		pr.LogWarnings, pr.LogErrors)
	return res, pr, nil
}

// createAndWait creates the pods all at once and waits until they are Running (or Failed), the
// process serving them exits or the wait ends.
func createAndWait(ctx context.Context, cs kubernetes.Interface, obs *podload.Observer, ns string, o options,
	virtualNode bool, exited func() bool, label string, tick func()) (*result, *podload.Creation, error) {
	creating := podload.StartCreate(ctx, cs, ns, o.pods, 0, o.creators,
		func(i int) *corev1.Pod { return benchPod(i, virtualNode) })
	timedOut, _ := obs.WaitAll(ctx, creating.Want, time.Now().Add(o.wait), exited, label, tick)
	stopWait := time.Now()
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	c := creating.Wait()
	res := &result{Pods: o.pods}
	res.TimedOut = timedOut
	// Only what was seen while waiting counts.
	obs.Measure(podName, c, o.pods, stopWait, false, &res.Outcome)
	return res, c, nil
}

// deleteAndWait deletes every pod created, as `kubectl delete` does (graceful, the pod's own
// grace period), and waits until left() reports none in the namespace and none on the backend.
func deleteAndWait(ctx context.Context, cs kubernetes.Interface, ns string, c *podload.Creation, o options,
	left func() (cluster, backend int), exited func() bool, res *result) {
	first := time.Now()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		names := make(chan string)
		var wg sync.WaitGroup
		for w := 0; w < o.creators; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range names {
					for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
						err := cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
						if err == nil || apierrors.IsNotFound(err) {
							break
						}
						time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
					}
				}
			}()
		}
		for i, t := range c.Sent {
			if !t.IsZero() {
				names <- podName(i)
			}
		}
		close(names)
		wg.Wait()
	}()
	deadline := first.Add(o.wait)
	lastPrint := time.Now()
	for {
		clusterLeft, backendLeft := left()
		res.ClusterLeft, res.BackendLeft = clusterLeft, backendLeft
		select {
		case <-sent:
			if backendLeft == 0 && res.BackendGoneS == nil {
				res.BackendGoneS = ptr(podload.Round(time.Since(first).Seconds(), 2))
			}
			if clusterLeft == 0 && backendLeft == 0 {
				res.DeleteS = ptr(podload.Round(time.Since(first).Seconds(), 2))
				return
			}
		default:
		}
		if ctx.Err() != nil || exited() {
			return
		}
		if time.Now().After(deadline) {
			res.DeleteTimedOut = true
			return
		}
		if time.Since(lastPrint) >= 10*time.Second {
			fmt.Printf("  deleting: %d pods left in %s, %d on the backend\n", clusterLeft, ns, backendLeft)
			lastPrint = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stuck describes up to n pods that are not Running: phase, node, reason and the conditions
// that are not true, so that a run that never finishes says why.
func stuck(pods []*corev1.Pod, n int) []string {
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	var out []string
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning {
			continue
		}
		s := fmt.Sprintf("%s: phase %q node %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		if p.Status.Reason != "" || p.Status.Message != "" {
			s += fmt.Sprintf(" reason %q message %q", p.Status.Reason, p.Status.Message)
		}
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				s += fmt.Sprintf("; %s=%s %s %s", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		if p.DeletionTimestamp != nil {
			s += "; being deleted"
		}
		out = append(out, s)
		if len(out) == n {
			break
		}
	}
	return out
}

// requestsBetween is burstlet's requests between two scrapes of its counters (before nil: since
// it started). Writes are every verb but the reads GET, HEAD, LIST and WATCH (the RestClient's
// observer reports the HTTP method, or LIST/WATCH for streamed lists and watches), whatever
// their answer.
func requestsBetween(before, after map[string]float64, pods int) *requests {
	r := &requests{Cluster: map[string]float64{}, Backend: map[string]float64{}}
	for k, v := range after {
		var byVerb map[string]float64
		var writes *float64
		switch {
		case strings.HasPrefix(k, "burstlet_api_requests_total{"):
			byVerb, writes = r.Cluster, &r.ClusterWrites
		case strings.HasPrefix(k, "burstlet_backend_requests_total{"):
			byVerb, writes = r.Backend, &r.BackendWrites
		default:
			continue
		}
		d := v - before[k]
		if d == 0 {
			continue
		}
		verb := report.LabelValue(k, "verb")
		byVerb[verb+" "+report.LabelValue(k, "code")] += d
		if isWrite(verb) {
			*writes += d
		}
	}
	if pods > 0 {
		r.ClusterWritesPerPod = podload.Round(r.ClusterWrites/float64(pods), 2)
		r.BackendWritesPerPod = podload.Round(r.BackendWrites/float64(pods), 2)
	}
	return r
}

func isWrite(verb string) bool {
	switch verb {
	case "GET", "HEAD", "LIST", "WATCH", "OPTIONS":
		return false
	}
	return true
}

func printResult(r *result) {
	fmt.Printf("  %s: created in %.1fs, %d/%d Running in %.1fs (%.0f pods/s), p50 %s p99 %s",
		r.Path, r.CreateS, r.Running, r.Pods, r.ElapsedS, r.PodsPerS, ms(r.P50Ms), ms(r.P99Ms))
	if r.DeleteS != nil {
		fmt.Printf(", all deleted in %.1fs", *r.DeleteS)
	}
	fmt.Println()
	for _, s := range r.Stuck {
		fmt.Println("    not Running:", s)
	}
}
