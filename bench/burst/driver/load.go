package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// plan is one measured run: pods created at a steady rate, or as fast as the creators go.
type plan struct {
	pods int
	rate float64 // pods per second; 0: all at once
}

func (p plan) String() string {
	if p.rate > 0 {
		return fmt.Sprintf("%d pods at %g/s", p.pods, p.rate)
	}
	return fmt.Sprintf("%d pods at once", p.pods)
}

// benchPod is a small pod bound straight to node: the scheduler is not involved, so the
// time to Running is the node agent's alone. It tolerates every taint, because the node of a
// stopped system goes NotReady between runs and the node controller would evict its pods.
func benchPod(run, node string, i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", run, i),
			Labels: map[string]string{"app": "burst", "run": run}},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/bench/app:1.0",
				Env: []corev1.EnvVar{{Name: "MODE", Value: "bench"}}}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
}

// creation holds, per pod, when its Create request was sent (the pod's "bound" time: it is
// bound from the moment it exists) and how long the call took.
type creation struct {
	sent     []time.Time
	took     []time.Duration
	failures int
	elapsed  time.Duration // first request sent to last answer
}

// createPods creates p.pods pods with `creators` goroutines sharing one clientset. A paced
// plan hands out pod i at start + i/rate, so a slow call never delays the schedule.
func createPods(ctx context.Context, cs kubernetes.Interface, ns, run, node string, p plan, creators int) *creation {
	c := &creation{sent: make([]time.Time, p.pods), took: make([]time.Duration, p.pods)}
	next := make(chan int, creators)
	start := time.Now()
	go func() {
		defer close(next)
		for i := 0; i < p.pods; i++ {
			if p.rate > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(float64(i) / p.rate * float64(time.Second)))))
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var failures atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < creators; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pod := benchPod(run, node, i)
				// Retry what a loaded API server may answer (429, timeouts); a pod that
				// never gets created is counted and stays missing from the results.
				for attempt := 0; ; attempt++ {
					c.sent[i] = time.Now()
					_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
					c.took[i] = time.Since(c.sent[i])
					if err == nil || apierrors.IsAlreadyExists(err) {
						break
					}
					if attempt == 5 || ctx.Err() != nil {
						failures.Add(1)
						c.sent[i] = time.Time{}
						break
					}
					time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	c.elapsed = time.Since(start)
	c.failures = int(failures.Load())
	return c
}

// observer records when a client-go watch (through an informer) first sees each pod of a
// run Running, and which pods ended Failed instead.
type observer struct {
	mu      sync.Mutex
	running map[string]time.Time
	failed  map[string]string
	stop    chan struct{}
}

func observe(cs kubernetes.Interface, ns, run string) (*observer, error) {
	o := &observer{running: map[string]time.Time{}, failed: map[string]string{}, stop: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(opts *metav1.ListOptions) { opts.LabelSelector = "run=" + run }))
	inf := factory.Core().V1().Pods().Informer()
	see := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		o.mu.Lock()
		defer o.mu.Unlock()
		switch pod.Status.Phase {
		case corev1.PodRunning:
			if _, seen := o.running[pod.Name]; !seen {
				o.running[pod.Name] = now
			}
		case corev1.PodFailed:
			o.failed[pod.Name] = pod.Status.Reason + ": " + pod.Status.Message
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		return nil, err
	}
	factory.Start(o.stop)
	for deadline := time.Now().Add(time.Minute); !inf.HasSynced(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(o.stop)
			return nil, fmt.Errorf("pod informer did not sync")
		}
	}
	return o, nil
}

func (o *observer) failedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.failed)
}

func (o *observer) counts() (running, failed int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.running), len(o.failed)
}

// waitAll waits until want() pods are Running (or ended Failed), the process exits, ctx
// ends or the deadline passes. It calls tick every second and prints progress every 10 s.
func (o *observer) waitAll(ctx context.Context, want func() int, deadline time.Time, p *process, label string,
	tick func()) (timedOut, exited bool) {
	lastTick, lastPrint := time.Now(), time.Now()
	for ctx.Err() == nil {
		running, failed := o.counts()
		n := want()
		switch {
		case running+failed >= n:
			return false, false
		case p.exited():
			return false, true
		case time.Now().After(deadline):
			return true, false
		}
		if time.Since(lastTick) >= time.Second {
			tick()
			lastTick = time.Now()
		}
		if time.Since(lastPrint) >= 10*time.Second {
			fmt.Printf("  %s: %d/%d Running\n", label, running, n)
			lastPrint = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, false
}

// latencies returns bound→Running in ms for the pods seen Running until `until`, sorted,
// and the time the last one was seen.
func (o *observer) latencies(run string, c *creation, until time.Time) ([]float64, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ms []float64
	var last time.Time
	for i, sent := range c.sent {
		at, ok := o.running[fmt.Sprintf("%s-%05d", run, i)]
		if !ok || sent.IsZero() || at.After(until) {
			continue
		}
		ms = append(ms, float64(at.Sub(sent).Microseconds())/1000)
		if at.After(last) {
			last = at
		}
	}
	sort.Float64s(ms)
	return ms, last
}

// percentile is the nearest-rank q-quantile over all n pods of a run, sorted holding the
// latencies of those that got Running; nil when the rank falls on a pod that never did.
func percentile(sorted []float64, n int, q float64) *float64 {
	rank := int(math.Ceil(q*float64(n))) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(sorted) {
		return nil
	}
	v := math.Round(sorted[rank]*10) / 10
	return &v
}

// deletePods force-deletes (grace 0) every pod of the benchmark's namespace in parallel and
// waits until none is left. Forcing keeps the cleanup independent of the system that served
// them, which is stopped by then (kwok's only sees pods already gone).
func deletePods(ctx context.Context, cs kubernetes.Interface, ns string, workers int) error {
	grace := int64(0)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=burst"})
		if err == nil && len(list.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods of namespace %s not gone after 5 minutes (%v)", ns, err)
		}
		if err != nil {
			continue
		}
		names := make(chan string)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range names {
					_ = cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
				}
			}()
		}
		for _, p := range list.Items {
			names <- p.Name
		}
		close(names)
		wg.Wait()
	}
}
