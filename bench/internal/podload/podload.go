// Package podload creates many pods fast and watches them turn Running: the load and the
// stopwatch of the pod benchmarks.
package podload

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

// Creation holds, per pod, when its Create request was sent and how long the call took.
type Creation struct {
	Sent     []time.Time // zero for a pod that could not be created
	Took     []time.Duration
	Failures int
	Elapsed  time.Duration // first request sent to last answer
}

// Create creates n pods, build(i) for i in [0, n), with `creators` goroutines sharing one
// clientset. With rate > 0 pod i is handed out at start + i/rate, so a slow call never delays
// the schedule; with rate 0 as fast as the creators go.
func Create(ctx context.Context, cs kubernetes.Interface, ns string, n int, rate float64, creators int,
	build func(i int) *corev1.Pod) *Creation {
	c := &Creation{Sent: make([]time.Time, n), Took: make([]time.Duration, n)}
	next := make(chan int, creators)
	start := time.Now()
	go func() {
		defer close(next)
		for i := 0; i < n; i++ {
			if rate > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
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
				pod := build(i)
				// Retry what a loaded API server may answer (429, timeouts); a pod that
				// never gets created is counted and stays missing from the results.
				for attempt := 0; ; attempt++ {
					c.Sent[i] = time.Now()
					_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
					c.Took[i] = time.Since(c.Sent[i])
					if err == nil || apierrors.IsAlreadyExists(err) {
						break
					}
					if attempt == 5 || ctx.Err() != nil {
						failures.Add(1)
						c.Sent[i] = time.Time{}
						break
					}
					time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	c.Elapsed = time.Since(start)
	c.Failures = int(failures.Load())
	return c
}

// FirstSent is when the first Create request went out.
func (c *Creation) FirstSent() time.Time {
	var first time.Time
	for _, t := range c.Sent {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

// CallP99 is the 99th percentile of the Create calls' duration, in ms.
func (c *Creation) CallP99() float64 {
	var d []float64
	for i, t := range c.Took {
		if !c.Sent[i].IsZero() {
			d = append(d, float64(t.Microseconds())/1000)
		}
	}
	sort.Float64s(d)
	if p := Percentile(d, len(d), 0.99); p != nil {
		return *p
	}
	return 0
}

// Observer records when a client-go watch (through an informer) first sees each pod of a
// namespace (and label selector) Running, which pods ended Failed instead, and how many pods
// exist.
type Observer struct {
	mu      sync.Mutex
	running map[string]time.Time
	failed  map[string]string
	inf     cache.SharedIndexInformer
	stop    chan struct{}
}

// Observe starts the watch and returns once it has listed.
func Observe(cs kubernetes.Interface, ns, selector string) (*Observer, error) {
	o := &Observer{running: map[string]time.Time{}, failed: map[string]string{}, stop: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(opts *metav1.ListOptions) { opts.LabelSelector = selector }))
	o.inf = factory.Core().V1().Pods().Informer()
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
	if _, err := o.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		return nil, err
	}
	factory.Start(o.stop)
	for deadline := time.Now().Add(time.Minute); !o.inf.HasSynced(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(o.stop)
			return nil, fmt.Errorf("pod informer did not sync")
		}
	}
	return o, nil
}

// Close stops the watch.
func (o *Observer) Close() { close(o.stop) }

// FailedCount is the number of pods seen Failed.
func (o *Observer) FailedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.failed)
}

// Failed returns up to n of the Failed pods' "reason: message", by pod name.
func (o *Observer) Failed(n int) map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]string{}
	for name, why := range o.failed {
		if len(out) == n {
			break
		}
		out[name] = why
	}
	return out
}

// Counts are the pods seen Running and seen Failed so far.
func (o *Observer) Counts() (running, failed int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.running), len(o.failed)
}

// Pods are the pods the watch currently knows (deleted ones are gone from it).
func (o *Observer) Pods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, obj := range o.inf.GetStore().List() {
		if p, ok := obj.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out
}

// Len is the number of pods the watch currently knows.
func (o *Observer) Len() int { return len(o.inf.GetStore().ListKeys()) }

// WaitAll waits until want() pods are Running (or ended Failed), exited() is true, ctx ends or
// the deadline passes. It calls tick every second and prints progress every 10 s.
func (o *Observer) WaitAll(ctx context.Context, want func() int, deadline time.Time, exited func() bool,
	label string, tick func()) (timedOut, exitedEarly bool) {
	lastTick, lastPrint := time.Now(), time.Now()
	for ctx.Err() == nil {
		running, failed := o.Counts()
		n := want()
		switch {
		case running+failed >= n:
			return false, false
		case exited():
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

// Latencies returns Create sent → seen Running in ms for the pods (named name(i)) seen Running
// until `until`, sorted, and the time the last one was seen.
func (o *Observer) Latencies(name func(i int) string, c *Creation, until time.Time) ([]float64, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ms []float64
	var last time.Time
	for i, sent := range c.Sent {
		at, ok := o.running[name(i)]
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

// Percentile is the nearest-rank q-quantile over all n pods of a run, sorted holding the
// latencies of those that got Running; nil when the rank falls on a pod that never did.
func Percentile(sorted []float64, n int, q float64) *float64 {
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

// ForceDelete force-deletes (grace 0) every pod of a namespace matching selector in parallel
// and waits until none is left (at most 5 minutes).
func ForceDelete(ctx context.Context, cs kubernetes.Interface, ns, selector string, workers int) error {
	grace := int64(0)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
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

// EnsureNamespace creates a namespace (if missing) and waits for its default ServiceAccount:
// pods are admitted once it exists.
func EnsureNamespace(ctx context.Context, cs kubernetes.Interface, ns string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no default ServiceAccount in %s", ns)
		}
	}
}

// Creating is a Create running in the background while the pods are watched.
type Creating struct {
	n    int
	done chan *Creation
	c    *Creation
}

// StartCreate runs Create in the background.
func StartCreate(ctx context.Context, cs kubernetes.Interface, ns string, n int, rate float64, creators int,
	build func(i int) *corev1.Pod) *Creating {
	c := &Creating{n: n, done: make(chan *Creation, 1)}
	go func() { c.done <- Create(ctx, cs, ns, n, rate, creators, build) }()
	return c
}

// Want is the number of pods to wait for (Observer.WaitAll): all, less those whose creation
// failed once that is known. Called from the waiting goroutine only.
func (c *Creating) Want() int {
	if c.c == nil {
		select {
		case c.c = <-c.done:
		default:
			return c.n
		}
	}
	return c.n - c.c.Failures
}

// Wait returns the finished Creation.
func (c *Creating) Wait() *Creation {
	if c.c == nil {
		c.c = <-c.done
	}
	return c.c
}

// Outcome is what a wave of n pods reached, in the JSON fields both benchmarks report.
// Pointers are null when not reached.
type Outcome struct {
	Running        int      `json:"running"`
	Failed         int      `json:"failed,omitempty"`
	CreateFailures int      `json:"create_failures,omitempty"`
	TimedOut       bool     `json:"timed_out,omitempty"`
	Exited         string   `json:"exited,omitempty"`
	CreateS        float64  `json:"create_s"`           // first Create sent to last answered
	CreateCallP99  float64  `json:"create_call_p99_ms"` // included in every latency
	ElapsedS       float64  `json:"elapsed_s"`          // first Create sent to last pod Running
	PodsPerS       float64  `json:"pods_per_s"`         // Running / elapsed_s
	P50Ms          *float64 `json:"p50_ms"`
	P90Ms          *float64 `json:"p90_ms"`
	P99Ms          *float64 `json:"p99_ms"`
	MaxMs          *float64 `json:"max_ms"`

	Latencies []float64 `json:"-"` // sorted, of the pods seen Running
	FirstSent time.Time `json:"-"` // the first Create sent
}

// Measure fills the Outcome of n pods named name(i), created by c, from what obs saw Running
// until stopWait. The elapsed time ends at the last pod seen Running, or at stopWait when not
// all got there or cut (the wait ended early).
func (o *Observer) Measure(name func(i int) string, c *Creation, n int, stopWait time.Time, cut bool,
	into *Outcome) {
	lat, last := o.Latencies(name, c, stopWait)
	into.Latencies = lat
	into.Running, into.Failed = len(lat), o.FailedCount()
	into.CreateFailures = c.Failures
	into.CreateS = Round(c.Elapsed.Seconds(), 2)
	into.CreateCallP99 = c.CallP99()
	into.FirstSent = c.FirstSent()
	end := last
	if cut || into.Running < n {
		end = stopWait
	}
	into.ElapsedS = Round(end.Sub(into.FirstSent).Seconds(), 2)
	if into.ElapsedS > 0 {
		into.PodsPerS = Round(float64(into.Running)/end.Sub(into.FirstSent).Seconds(), 1)
	}
	into.P50Ms = Percentile(lat, n, 0.50)
	into.P90Ms = Percentile(lat, n, 0.90)
	into.P99Ms = Percentile(lat, n, 0.99)
	into.MaxMs = Percentile(lat, n, 1)
}

// Round rounds half up to `digits` decimals, as the reports print numbers.
func Round(v float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// NodeReady is nil once node `name` reports Ready.
func NodeReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return nil
		}
	}
	return fmt.Errorf("node %s not Ready", name)
}
