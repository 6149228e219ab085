package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func int32p(v int32) *int32 { return &v }
func int64p(v int64) *int64 { return &v }

// runningPods waits until exactly want pods match selector and all are Running on nodes
// whose names start with nodePrefix, with a pod IP inside the plane's pod CIDR prefix.
func runningPods(t *testing.T, cs kubernetes.Interface, ns, selector string, want int, nodePrefix, ipPrefix string) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d Running pods (%s) in %s", want, selector, ns), func() error {
		pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(pods.Items) != want {
			return fmt.Errorf("%d pods, want %d", len(pods.Items), want)
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pod %s is %s", p.Name, p.Status.Phase)
			}
			if !strings.HasPrefix(p.Spec.NodeName, nodePrefix) {
				return fmt.Errorf("pod %s on node %q, want %s*", p.Name, p.Spec.NodeName, nodePrefix)
			}
			if !strings.HasPrefix(p.Status.PodIP, ipPrefix) {
				return fmt.Errorf("pod %s has IP %q, want %s*", p.Name, p.Status.PodIP, ipPrefix)
			}
		}
		return nil
	})
}

func TestSmokeClusterDeploymentRunsOnKwokWorkers(t *testing.T) {
	ns := namespace(t, env.cluster)
	labels := map[string]string{"app": "smoke"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: int32p(3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
			},
		},
	}
	if _, err := env.cluster.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	runningPods(t, env.cluster, ns, "app=smoke", 3, "kwok-worker-", "10.244.")
	eventually(t, 30*time.Second, "deployment available", func() error {
		d, err := env.cluster.AppsV1().Deployments(ns).Get(context.Background(), "smoke", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 3 {
			return fmt.Errorf("%d available", d.Status.AvailableReplicas)
		}
		return nil
	})
}

func TestSmokeBackendPodRunsOnFleet(t *testing.T) {
	ns := plainNamespace(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns, Labels: map[string]string{"app": "smoke"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	if _, err := env.backend.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	runningPods(t, env.backend, ns, "app=smoke", 1, "cci-fleet-", "10.245.")
}

// The two planes are independent: separate CAs, so one plane's credentials are refused by
// the other.
func TestSmokePlanesAreIsolated(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", env.tb.Cluster.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = env.tb.Backend.Server
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); err == nil {
		t.Fatal("cluster credentials were accepted by the backend plane")
	}
}

// burstlet's own identity is a non-admin ServiceAccount: it may read pods, it may not delete
// namespaces.
func TestSmokeBurstletIdentityIsNotAdmin(t *testing.T) {
	for _, p := range [](struct{ name, kubeconfig string }){
		{"cluster", env.tb.Cluster.BurstletKubeconfig}, {"backend", env.tb.Backend.BurstletKubeconfig},
	} {
		cfg, err := clientcmd.BuildConfigFromFlags("", p.kubeconfig)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{Limit: 1}); err != nil {
			t.Errorf("%s: burstlet cannot list pods: %v", p.name, err)
		}
		err = cs.RbacV1().ClusterRoles().Delete(context.Background(), "admin", metav1.DeleteOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: deleting clusterrole admin as burstlet: got %v, want Forbidden", p.name, err)
		}
	}
}
