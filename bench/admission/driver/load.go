package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"burstlet/bench/internal/podload"
	"burstlet/bench/internal/proc"
	"burstlet/bench/internal/testbed"
)

// bench is one run's shared state: the testbed, the admin client and the owner of the pods.
type bench struct {
	o       options
	cs      kubernetes.Interface
	tb      *testbed.State
	logDir  string
	rsName  string
	rsUID   types.UID
	created int // pods sent so far, for unique names across configurations
}

// setup creates the namespace and the labelled Deployment, of 0 replicas, and waits for the
// ReplicaSet the Deployment controller makes for it: the owner of every pod sent.
func (b *bench) setup(ctx context.Context) error {
	if err := podload.EnsureNamespace(ctx, b.cs, namespace); err != nil {
		return err
	}
	labels := map[string]string{"app": ownerName}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: ownerName, Labels: map[string]string{burstLabel: "auto"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: podSpec()},
		},
	}
	if _, err := b.cs.AppsV1().Deployments(namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := b.cs.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + ownerName})
		if err == nil {
			for _, rs := range list.Items {
				if c := metav1.GetControllerOf(&rs); c != nil && c.Kind == "Deployment" && c.Name == ownerName {
					b.rsName, b.rsUID = rs.Name, rs.UID
					fmt.Printf("owner: Deployment %s/%s (%s=auto, 0 replicas) → ReplicaSet %s\n", namespace,
						ownerName, burstLabel, rs.Name)
					return nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no ReplicaSet of Deployment %s after 1 minute (list: %v)", ownerName, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// podSpec is one small container: what a Deployment's pod usually is.
func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", Image: "registry.example.com/bench/app:1.0",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
	}}}
}

// pod is a pod as the ReplicaSet controller would create it: labelled like the template and
// controlled by the ReplicaSet, so burstlet's webhook reads the ReplicaSet, then the
// Deployment, to find the label.
func (b *bench) pod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": ownerName},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
				Name: b.rsName, UID: b.rsUID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
		Spec: podSpec(),
	}
}

// create sends one pod CREATE with dryRun=All (admission runs, nothing is stored) and says
// whether the pod that comes back carries burstlet's annotation.
func (b *bench) create(ctx context.Context, name string) (bool, error) {
	p, err := b.cs.CoreV1().Pods(namespace).Create(ctx, b.pod(name),
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, err
	}
	_, ok := p.Annotations[ruleAnnotation]
	return ok, nil
}

// probe sends one request outside any measurement.
func (b *bench) probe(ctx context.Context) (bool, error) {
	b.created++
	return b.create(ctx, fmt.Sprintf("probe-%06d", b.created))
}

// sample is one request of the open loop.
type sample struct {
	lag       time.Duration // due → sent
	took      time.Duration // due → answered
	err       error
	annotated bool
}

// openLoop sends rate×d requests, request i due at start + i/rate, each from its own goroutine
// the moment it is due, so that a slow answer delays no later request (no coordinated
// omission); it returns once every request is answered or has timed out.
func (b *bench) openLoop(ctx context.Context, rate float64, d time.Duration, tag string) []sample {
	n := int(math.Round(rate * d.Seconds()))
	out := make([]sample, n)
	first := b.created
	b.created += n
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &out[i]
			s.lag = time.Since(due)
			rctx, cancel := context.WithTimeout(ctx, b.o.timeout)
			defer cancel()
			s.annotated, s.err = b.create(rctx, fmt.Sprintf("%s-%06d", tag, first+i))
			s.took = time.Since(due)
		}()
	}
	wg.Wait()
	return out
}

// summarize fills the result's counts and latency statistics from the window's samples.
func summarize(res *result, samples []sample, rate float64, wantAnnotation bool) {
	res.Requests = len(samples)
	ms := make([]float64, len(samples))
	lags := make([]float64, len(samples))
	errs := map[string]int{}
	for i, s := range samples {
		ms[i] = roundMs(s.took)
		lags[i] = roundMs(s.lag)
		switch {
		case s.err != nil:
			res.Errors++
			errs[strings.TrimSpace(s.err.Error())]++
		case s.annotated:
			res.Answered++
			res.Annotated++
		default:
			res.Answered++
			if wantAnnotation {
				res.Missed++
				res.MissedAt = append(res.MissedAt, i)
			}
		}
	}
	for e, n := range errs {
		res.ErrorSamples = append(res.ErrorSamples, fmt.Sprintf("%dx %s", n, e))
	}
	sort.Strings(res.ErrorSamples)
	res.ErrorSamples = res.ErrorSamples[:min(len(res.ErrorSamples), 5)]
	res.SamplesMs = ms
	res.Latency = statsOf(ms)
	sort.Float64s(lags)
	if len(lags) > 0 {
		res.SendLagP99Ms = *percentile(lags, 0.99)
		res.SendLagMaxMs = lags[len(lags)-1]
	}
	if n := len(samples); n > 1 {
		// First request sent → last request sent.
		span := float64(n-1)/rate + (samples[n-1].lag - samples[0].lag).Seconds()
		res.RatePerS = podload.Round(float64(n-1)/span, 1)
	}
}

// statsOf are the percentiles of latencies in ms.
func statsOf(ms []float64) stats {
	sorted := append([]float64(nil), ms...)
	sort.Float64s(sorted)
	var s stats
	if len(sorted) == 0 {
		return s
	}
	s.P50, s.P90, s.P99, s.P999 = percentile(sorted, 0.5), percentile(sorted, 0.9), percentile(sorted, 0.99),
		percentile(sorted, 0.999)
	s.Max = ptr(sorted[len(sorted)-1])
	sum := 0.0
	for _, v := range sorted {
		sum += v
	}
	s.Mean = ptr(podload.Round(sum/float64(len(sorted)), 3))
	return s
}

// percentile is the nearest-rank q-quantile of sorted values (nil when there are none).
func percentile(sorted []float64, q float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return ptr(sorted[max(0, min(rank, len(sorted)-1))])
}

func roundMs(d time.Duration) float64 { return podload.Round(float64(d)/float64(time.Millisecond), 3) }

// cpuMeter reads the CPU time of the processes around one window.
type cpuMeter struct {
	procs []*proc.Process
	start []float64
	began time.Time
}

func meter(procs ...*proc.Process) *cpuMeter {
	m := &cpuMeter{procs: procs, start: make([]float64, len(procs)), began: time.Now()}
	for i, p := range procs {
		if p == nil {
			m.start[i] = math.NaN()
			continue
		}
		v, err := p.CPUSeconds()
		if err != nil {
			v = math.NaN()
		}
		m.start[i] = v
	}
	return m
}

// stop returns each process's CPU seconds since meter() (nil where unreadable) and the wall time.
func (m *cpuMeter) stop() ([]*float64, float64) {
	wall := time.Since(m.began).Seconds()
	out := make([]*float64, len(m.procs))
	for i, p := range m.procs {
		if p == nil || math.IsNaN(m.start[i]) {
			continue
		}
		if v, err := p.CPUSeconds(); err == nil {
			out[i] = ptr(podload.Round(v-m.start[i], 2))
		}
	}
	return out, wall
}

func cores(cpu *float64, wall float64) *float64 {
	if cpu == nil || wall <= 0 {
		return nil
	}
	return ptr(podload.Round(*cpu/wall, 3))
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
