// Command clientgo is the peer of burstlet's informer benchmark: a client-go pod informer
// doing a cold list+watch sync from the same API server. It also populates the server.
//
//	clientgo populate -kubeconfig K -namespace N -pods 10000
//	clientgo sync     -kubeconfig K [-namespace N]
//
// sync prints one JSON object: {"system":"client-go","objects":N,"sync_s":S,"peak_rss_mb":M}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clientgo {populate|sync} [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	ns := fs.String("namespace", "", "namespace (sync: empty = all)")
	pods := fs.Int("pods", 10000, "populate: pods to create")
	workers := fs.Int("workers", 64, "populate: parallel creates")
	_ = fs.Parse(os.Args[2:])
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "populate":
		populate(cs, *ns, *pods, *workers)
	case "sync":
		syncPods(cs, *ns)
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "clientgo:", err)
	os.Exit(1)
}

// A pod shaped like a typical Deployment replica: two containers, env, resources, probes,
// labels and annotations. Bound to a node no kubelet serves, so it stays as created.
const benchNode = "bench-idle-node"

func benchPod(ns string, i int) *corev1.Pod {
	rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"),
		corev1.ResourceMemory: resource.MustParse("512Mi")}
	ctr := func(name string, port int32) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example.com/team/" + name + ":1.2.3",
			Args: []string{"--port=8080", "--log-level=info"},
			Env: []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "REPLICA", Value: fmt.Sprint(i)},
				{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
			Ports:     []corev1.ContainerPort{{Name: name, ContainerPort: port}},
			Resources: corev1.ResourceRequirements{Requests: rl, Limits: rl},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(port)}}},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("bench-%05d", i), Namespace: ns,
			Labels:      map[string]string{"app": "bench", "tier": "web", "pod-template-hash": "7c9f8d6b5"},
			Annotations: map[string]string{"virtual-kubelet.io/burst-to-cci": "enforce"},
		},
		Spec: corev1.PodSpec{
			NodeName:   benchNode,
			Containers: []corev1.Container{ctr("app", 8080), ctr("sidecar", 9090)},
			// The idle node never reports, so the node controller taints it and would evict
			// the pods after five minutes, changing the list under the benchmark; tolerating
			// every taint keeps them as created.
			Tolerations: []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoSchedule}, {Operator: corev1.TolerationOpExists}},
		},
	}
}

func populate(cs kubernetes.Interface, ns string, n, workers int) {
	ctx := context.Background()
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		fail(err)
	}
	// The node must exist, or the pod garbage collector deletes its pods as orphans. No kubelet
	// or kwok serves it, so its pods keep the state they were created with.
	_, err = cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: benchNode}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		fail(err)
	}
	for { // pods are admitted once the namespace's default ServiceAccount exists
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns, i), metav1.CreateOptions{}); err != nil &&
					!apierrors.IsAlreadyExists(err) {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		fail(e.(error))
	}
	fmt.Fprintf(os.Stderr, "populated %d pods in %.1fs\n", n, time.Since(start).Seconds())
}

func syncPods(cs kubernetes.Interface, ns string) {
	start := time.Now()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	stop := make(chan struct{})
	factory.Start(stop)
	// Poll every millisecond: cache.WaitForCacheSync polls every 100 ms, which would add up to
	// 100 ms to client-go's time.
	for deadline := time.Now().Add(5 * time.Minute); !inf.HasSynced(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("informer did not sync"))
		}
	}
	elapsed := time.Since(start)
	n := len(inf.GetStore().ListKeys())
	// Hold the cache a moment so its memory is counted as a long-running process holds it.
	time.Sleep(500 * time.Millisecond)
	close(stop)
	out, _ := json.Marshal(map[string]any{"system": "client-go", "objects": n,
		"sync_s": elapsed.Seconds(), "peak_rss_mb": peakRSSMB()})
	fmt.Println(string(out))
}

// peakRSSMB reads VmHWM (the peak resident set) of this process.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
