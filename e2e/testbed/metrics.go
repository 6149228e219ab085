package testbed

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	metricsresource "sigs.k8s.io/kwok/kustomize/metrics/resource"
	metricsusage "sigs.k8s.io/kwok/kustomize/metrics/usage"
)

// MetricsServerName is the metrics-server process of a plane (Config.Metrics) and its log,
// <state>/<plane>/<name>.log.
const MetricsServerName = "metrics-server"

// MetricsServerUser is metrics-server's identity (client certificate), towards the API server
// and the kubelets it scrapes (nodes/metrics).
const MetricsServerUser = "system:metrics-server"

// ResourceMetricsPathAnnotation on a node tells metrics-server where its resource metrics are
// (kwok serves each node's at /metrics/nodes/<node>/metrics/resource); without it,
// /metrics/resource as on a kubelet (burstlet's virtual node).
const ResourceMetricsPathAnnotation = "metrics.k8s.io/resource-metrics-path"

// The usage kwok reports for a pod's containers (a quantity each; default 1m CPU and 1Mi).
const (
	UsageCPUAnnotation    = "kwok.x-k8s.io/usage-cpu"
	UsageMemoryAnnotation = "kwok.x-k8s.io/usage-memory"
)

// MetricsResolution is how often metrics-server scrapes (its minimum): CPU needs two scrapes, so
// a pod's metrics appear about twice this after it starts.
const MetricsResolution = 10 * time.Second

// MetricsServer is a plane's metrics-server: it scrapes the plane's nodes (kwok's simulated
// resource metrics, or a kubelet API such as burstlet's on the node address) and serves
// metrics.k8s.io/v1beta1 through the API server's aggregation layer (kubectl top).
type MetricsServer struct {
	// URL is where it serves, on the test bed's node address (the API server reaches it through
	// the Service kube-system/metrics-server and its EndpointSlice).
	URL string `json:"url"`
	Log string `json:"log"`
}

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// kwokMetricsConfig is kwok's configuration of simulated resource metrics: the Metric of each
// node's /metrics/nodes/<node>/metrics/resource and the usage from the pods' annotations.
func kwokMetricsConfig() string {
	return strings.TrimSpace(metricsresource.DefaultMetricsResource) + "\n---\n" +
		strings.TrimSpace(metricsusage.DefaultUsageFromAnnotation)
}

// startMetricsServer registers metrics.k8s.io with the plane's aggregation layer and starts
// metrics-server on the node address; the returned wait returns once metrics-server is live (the
// rest of the plane's start goes on meanwhile).
func (s *planeStarter) startMetricsServer(ctx context.Context, cs kubernetes.Interface) (wait func() error, err error) {
	p := s.plane
	nodeIP := s.spec.NodeIP
	if nodeIP == "" {
		return nil, fmt.Errorf("%s needs the test bed's node address", MetricsServerName)
	}
	port, err := FreePort(nodeIP)
	if err != nil {
		return nil, err
	}
	pki := filepath.Join(p.Dir, "pki")
	serving, err := s.ca.issueTo(pki, "metrics-server-serving", certSpec{commonName: MetricsServerName, server: true,
		dnsNames: []string{"metrics-server.kube-system.svc", "metrics-server.kube-system.svc.cluster.local"},
		ips:      []net.IP{net.ParseIP(nodeIP)}})
	if err != nil {
		return nil, err
	}
	client, err := s.ca.issueTo(pki, "metrics-server", certSpec{commonName: MetricsServerUser, client: true})
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(p.Dir, "metrics-server.kubeconfig")
	if err := writeCertKubeconfig(kubeconfig, p, MetricsServerUser, client); err != nil {
		return nil, err
	}
	if err := registerMetricsAPI(ctx, cs, p, nodeIP, port); err != nil {
		return nil, fmt.Errorf("%s: %w", MetricsServerName, err)
	}
	proc, err := s.start(ctx, MetricsServerName, filepath.Join(s.binDir, MetricsServerName), []string{
		"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=" + nodeIP, fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + serving.CertPath, "--tls-private-key-file=" + serving.KeyPath,
		// The nodes' own port and InternalIP (kwok's on loopback, burstlet's on the node
		// address); serving certificates are not checked, as the API servers do not.
		"--kubelet-use-node-status-port", "--kubelet-preferred-address-types=InternalIP",
		"--kubelet-insecure-tls",
		"--metric-resolution=" + MetricsResolution.String(), "--kubelet-request-timeout=5s",
	})
	if err != nil {
		return nil, err
	}
	ms := &MetricsServer{URL: fmt.Sprintf("https://%s", net.JoinHostPort(nodeIP, fmt.Sprint(port))),
		Log: proc.Log}
	p.MetricsServer = ms
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec: a liveness probe of our own
	return func() error {
		return waitFor(ctx, proc, MetricsServerName+" /livez", func(ctx context.Context) error {
			return httpOK(ctx, insecure, ms.URL+"/livez")
		})
	}, nil
}

// registerMetricsAPI gives metrics-server its permissions and makes the API server route
// metrics.k8s.io to nodeIP:port: the APIService, a Service without selector and its
// EndpointSlice (--enable-aggregator-routing: the API server connects to the endpoint, there is
// no service proxy here).
func registerMetricsAPI(ctx context.Context, cs kubernetes.Interface, p *Plane, nodeIP string, port int) error {
	user := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: MetricsServerUser}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "testbed:metrics-server"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
		}}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return err
	}
	for name, ref := range map[string]string{"testbed:metrics-server": role.Name,
		"testbed:metrics-server:auth-delegator": "system:auth-delegator"} {
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: user,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ref}}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil &&
			!apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "testbed:metrics-server:auth-reader",
		Namespace: metav1.NamespaceSystem}, Subjects: user,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"}}
	if _, err := cs.RbacV1().RoleBindings(metav1.NamespaceSystem).Create(ctx, rb, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return err
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: MetricsServerName, Namespace: metav1.NamespaceSystem},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443,
			TargetPort: intstr.FromInt32(int32(port)), Protocol: corev1.ProtocolTCP}}}}
	if _, err := cs.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, svc, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return err
	}
	ready, portName, portNum, proto := true, "https", int32(port), corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: MetricsServerName + "-testbed", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{discoveryv1.LabelServiceName: MetricsServerName,
				discoveryv1.LabelManagedBy: "testbed.burstlet.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{nodeIP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &portNum, Protocol: &proto}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).Create(ctx, slice,
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	cfg, err := p.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		return err
	}
	api := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1",
			"service":              map[string]any{"name": MetricsServerName, "namespace": metav1.NamespaceSystem, "port": int64(443)},
			"caBundle":             base64.StdEncoding.EncodeToString(caPEM),
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
		},
	}}
	if _, err := dyn.Resource(apiServiceGVR).Create(ctx, api, metav1.CreateOptions{}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}
