package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

// KwokNodeAnnotation marks the nodes kwok manages. burstlet's virtual node never carries it,
// so kwok leaves that node and its pods alone.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// NodePool is a set of identical kwok nodes.
type NodePool struct {
	Prefix string `json:"prefix"`
	Count  int    `json:"count"`
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
	Pods   int    `json:"pods"`
	// EphemeralStorage is each node's ephemeral-storage capacity ("" for none).
	EphemeralStorage string            `json:"ephemeralStorage,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
}

// PlaneSpec says what one control plane runs.
type PlaneSpec struct {
	Name           string
	ServiceCIDR    string
	PodCIDR        string
	Nodes          NodePool
	RBACFile       string   // applied after start; defines the burstlet identity
	CRDFiles       []string // CustomResourceDefinitions applied after start, waited for
	FeatureGates   []string // extra kube-apiserver feature gates, e.g. ExtendWebSocketsToKubelet=false
	KillWithParent bool
	// NodeIP is the test bed's node address (Network.HostIP): kubelet serving certificates
	// name it besides loopback.
	NodeIP string
	// Streams makes the plane's kwok serve logs, exec, attach and port-forward for its pods
	// (streams.go).
	Streams bool
	// Metrics makes the plane's kwok simulate resource metrics and runs metrics-server
	// (metrics.go).
	Metrics bool
	// CCI, when set, makes the plane behave like CCI (the backend's CCI mode, cci.go).
	CCI *CCIOptions
}

// Plane is a running control plane and the files a client needs to reach it.
type Plane struct {
	Name     string `json:"name"`
	Dir      string `json:"dir"`
	Server   string `json:"server"` // https://127.0.0.1:<port>
	CAFile   string `json:"caFile"`
	EtcdURL  string `json:"etcdURL"`
	KwokPort int    `json:"kwokPort"` // kwok's kubelet API
	// KubeletPort is the kubelet port the plane's kwok nodes advertise: KwokPort, or with pod
	// streams the kwok front's (KwokFrontName).
	KubeletPort int      `json:"kubeletPort"`
	PodCIDR     string   `json:"podCIDR"`
	NodeNames   []string `json:"nodeNames"`
	// Admin identity (system:masters) as a kubeconfig with embedded client certificate.
	AdminKubeconfig string `json:"adminKubeconfig"`
	// burstlet's identity: a ServiceAccount token bound by the RBAC in deploy/rbac.
	BurstletKubeconfig string `json:"burstletKubeconfig"`
	// The client certificate kube-apiserver presents to kubelets (cluster plane).
	KubeletClientCert string `json:"kubeletClientCert"`
	// A serving certificate for a kubelet API on 127.0.0.1 and the test bed's node address
	// (Testbed.NodeIP), signed by this plane's CA.
	KubeletServingCert string `json:"kubeletServingCert"`
	KubeletServingKey  string `json:"kubeletServingKey"`
	// Client certificate/key for direct use (client-certificate auth tests).
	AdminCert string `json:"adminCert"`
	AdminKey  string `json:"adminKey"`
	// Streams is set when the plane's kwok serves logs, exec, attach and port-forward for the
	// pods of its nodes (the backend plane): the files and addresses behind them.
	Streams *PodStreams `json:"streams,omitempty"`
	// MetricsServer is set when the plane runs metrics-server (Config.Metrics).
	MetricsServer *MetricsServer `json:"metricsServer,omitempty"`
	// CCI is set when the plane behaves like CCI (BackendCCI): what its network controller does.
	CCI *CCIOptions `json:"cci,omitempty"`
	// CCIGateway is set in CCI mode: the gateway in front of the API server that adds what CCI
	// does differently (authentication, accounts, storage import; cci_gateway.go).
	CCIGateway *CCIGateway `json:"cciGateway,omitempty"`

	Processes []*Process `json:"processes"`
}

func (p *Plane) stopAll(grace time.Duration) {
	// Reverse start order: clients first, etcd last.
	for i := len(p.Processes) - 1; i >= 0; i-- {
		p.Processes[i].stop(grace)
	}
}

// RESTConfig returns an admin client configuration for the plane.
func (p *Plane) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", p.AdminKubeconfig)
}

// Clientset returns an admin clientset for the plane.
func (p *Plane) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := p.RESTConfig()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, -1
	return kubernetes.NewForConfig(cfg)
}

type planeStarter struct {
	spec   PlaneSpec
	binDir string
	plane  *Plane
	ca     *certAuthority
}

func (s *planeStarter) kube() string { return filepath.Join(s.binDir, "kube") }

func (s *planeStarter) start(ctx context.Context, name, bin string, args []string) (*Process, error) {
	p, err := startProcess(name, bin, args, filepath.Join(s.plane.Dir, name+".log"), s.spec.KillWithParent)
	if err != nil {
		return nil, err
	}
	s.plane.Processes = append(s.plane.Processes, p)
	return p, nil
}

// startPlane brings one control plane up. On error, whatever it started is still listed in
// plane.Processes so the caller can stop it.
func startPlane(ctx context.Context, spec PlaneSpec, binDir, dir string) (*Plane, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &planeStarter{spec: spec, binDir: binDir, plane: &Plane{Name: spec.Name, Dir: dir, PodCIDR: spec.PodCIDR}}
	if err := s.run(ctx); err != nil {
		return s.plane, fmt.Errorf("%s plane: %w", spec.Name, err)
	}
	return s.plane, nil
}

func (s *planeStarter) run(ctx context.Context) error {
	p := s.plane
	pki := filepath.Join(p.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	var err error
	if s.ca, err = newCA(s.spec.Name + "-ca"); err != nil {
		return err
	}
	p.CAFile = filepath.Join(pki, "ca.crt")
	if err := os.WriteFile(p.CAFile, s.ca.pem, 0o644); err != nil {
		return err
	}
	// The controller-manager signs approved CSRs (kubelet-serving and the others) with the CA.
	caKeyPEM, err := encodeKey(s.ca.key)
	if err != nil {
		return err
	}
	caKeyFile := filepath.Join(pki, "ca.key")
	if err := os.WriteFile(caKeyFile, caKeyPEM, 0o600); err != nil {
		return err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	serving, err := s.ca.issueTo(pki, "apiserver", certSpec{commonName: "kube-apiserver", server: true,
		dnsNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		ips:      loopback})
	if err != nil {
		return err
	}
	admin, err := s.ca.issueTo(pki, "admin", certSpec{commonName: "testbed-admin",
		organization: []string{"system:masters"}, client: true})
	if err != nil {
		return err
	}
	p.AdminCert, p.AdminKey = admin.CertPath, admin.KeyPath
	kubeletClient, err := s.ca.issueTo(pki, "apiserver-kubelet-client", certSpec{
		commonName: "kube-apiserver-kubelet-client", organization: []string{"system:masters"}, client: true})
	if err != nil {
		return err
	}
	p.KubeletClientCert = kubeletClient.CertPath
	kubeletIPs := loopback
	if ip := net.ParseIP(s.spec.NodeIP); ip != nil {
		kubeletIPs = append([]net.IP{ip}, loopback...)
	}
	kubeletServing, err := s.ca.issueTo(pki, "kubelet-serving", certSpec{commonName: "burstlet",
		server: true, dnsNames: []string{"localhost"}, ips: kubeletIPs})
	if err != nil {
		return err
	}
	p.KubeletServingCert, p.KubeletServingKey = kubeletServing.CertPath, kubeletServing.KeyPath
	kcmCert, err := s.ca.issueTo(pki, "controller-manager", certSpec{
		commonName: "system:kube-controller-manager", client: true})
	if err != nil {
		return err
	}
	schedCert, err := s.ca.issueTo(pki, "scheduler", certSpec{commonName: "system:kube-scheduler", client: true})
	if err != nil {
		return err
	}
	kwokCert, err := s.ca.issueTo(pki, "kwok", certSpec{commonName: "kwok-controller",
		organization: []string{"system:masters"}, client: true, server: true,
		dnsNames: []string{"localhost"}, ips: loopback})
	if err != nil {
		return err
	}
	// The aggregation layer: the API server proxies to extension API servers (metrics-server)
	// with a front-proxy client certificate from a CA of its own, as kubeadm sets it up.
	frontProxyCA, err := newCA(s.spec.Name + "-front-proxy-ca")
	if err != nil {
		return err
	}
	frontProxyCAFile := filepath.Join(pki, "front-proxy-ca.crt")
	if err := os.WriteFile(frontProxyCAFile, frontProxyCA.pem, 0o644); err != nil {
		return err
	}
	frontProxyClient, err := frontProxyCA.issueTo(pki, "front-proxy-client", certSpec{
		commonName: "front-proxy-client", client: true})
	if err != nil {
		return err
	}
	saPub, saKey, err := writeSigningKey(pki)
	if err != nil {
		return err
	}

	// etcd: plain HTTP on loopback, no fsync (test data only).
	etcdPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	p.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	etcd, err := s.start(ctx, "etcd", s.kube(), []string{"etcd",
		"--name=testbed", "--data-dir=" + filepath.Join(p.Dir, "etcd"),
		"--listen-client-urls=" + p.EtcdURL, "--advertise-client-urls=" + p.EtcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testbed=" + peerURL, "--unsafe-no-fsync=true",
		"--quota-backend-bytes=8589934592", "--log-level=warn"})
	if err != nil {
		return err
	}
	if err := waitFor(ctx, etcd, "etcd health", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, p.EtcdURL+"/health")
	}); err != nil {
		return err
	}

	apiPort, err := freePort()
	if err != nil {
		return err
	}
	p.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	apiArgs := []string{"kube-apiserver",
		"--etcd-servers=" + p.EtcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file=" + serving.CertPath, "--tls-private-key-file=" + serving.KeyPath,
		"--client-ca-file=" + p.CAFile,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=" + s.spec.ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--kubelet-client-certificate=" + kubeletClient.CertPath,
		"--kubelet-client-key=" + kubeletClient.KeyPath,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--requestheader-client-ca-file=" + frontProxyCAFile,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + frontProxyClient.CertPath, "--proxy-client-key-file=" + frontProxyClient.KeyPath,
		// Extension API servers are reached at their endpoints: there is no service proxy.
		"--enable-aggregator-routing=true",
		"--profiling=false",
		"--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
		// PodTemplates bypass the watch cache so that a watch from a compacted
		// resourceVersion is answered by etcd with 410 Gone, deterministically (client tests).
		"--watch-cache-sizes=podtemplates#0",
	}
	if len(s.spec.FeatureGates) > 0 {
		apiArgs = append(apiArgs, "--feature-gates="+strings.Join(s.spec.FeatureGates, ","))
	}
	apiserver, err := s.start(ctx, "kube-apiserver", s.kube(), apiArgs)
	if err != nil {
		return err
	}

	p.AdminKubeconfig = filepath.Join(p.Dir, "admin.kubeconfig")
	if err := writeCertKubeconfig(p.AdminKubeconfig, p, "admin", admin); err != nil {
		return err
	}
	kcmConfig := filepath.Join(p.Dir, "controller-manager.kubeconfig")
	if err := writeCertKubeconfig(kcmConfig, p, "kube-controller-manager", kcmCert); err != nil {
		return err
	}
	schedConfig := filepath.Join(p.Dir, "scheduler.kubeconfig")
	if err := writeCertKubeconfig(schedConfig, p, "kube-scheduler", schedCert); err != nil {
		return err
	}
	kwokConfig := filepath.Join(p.Dir, "kwok.kubeconfig")
	if err := writeCertKubeconfig(kwokConfig, p, "kwok", kwokCert); err != nil {
		return err
	}

	readyClient, err := adminHTTPClient(p)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, apiserver, "kube-apiserver /readyz", func(ctx context.Context) error {
		return httpOK(ctx, readyClient, p.Server+"/readyz")
	}); err != nil {
		return err
	}

	kcm, err := s.start(ctx, "kube-controller-manager", s.kube(), []string{"kube-controller-manager",
		"--kubeconfig=" + kcmConfig,
		"--authentication-kubeconfig=" + kcmConfig, "--authorization-kubeconfig=" + kcmConfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		"--service-account-private-key-file=" + saKey, "--root-ca-file=" + p.CAFile,
		"--cluster-signing-cert-file=" + p.CAFile, "--cluster-signing-key-file=" + caKeyFile,
		"--use-service-account-credentials=true",
		"--kube-api-qps=1000", "--kube-api-burst=2000",
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
		"--concurrent-gc-syncs=20",
	})
	if err != nil {
		return err
	}
	schedulerConfig := filepath.Join(p.Dir, "scheduler.yaml")
	if err := os.WriteFile(schedulerConfig, []byte(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %s
  qps: 2000
  burst: 4000
leaderElection:
  leaderElect: false
`, schedConfig)), 0o644); err != nil {
		return err
	}
	sched, err := s.start(ctx, "kube-scheduler", s.kube(), []string{"kube-scheduler",
		"--config=" + schedulerConfig,
		"--authentication-kubeconfig=" + schedConfig, "--authorization-kubeconfig=" + schedConfig,
		"--bind-address=127.0.0.1", "--secure-port=0"})
	if err != nil {
		return err
	}

	kwokStages := filepath.Join(p.Dir, "kwok.yaml")
	stages := strings.Join([]string{nodefast.DefaultNodeInit, nodelease.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady, podCompleteStage, podDeleteStage, podSlowDeleteStage, podExitStage, podExitBesideProxyStage, podProxyStopStage,
		podRestartStage, podEphemeralStage}, "\n---\n")
	if s.spec.Streams {
		if p.Streams, err = newPodStreams(filepath.Join(p.Dir, "streams"), s.spec.NodeIP); err != nil {
			return err
		}
		stages += "\n---\n" + p.Streams.kwokConfig()
	}
	if s.spec.Metrics {
		stages += "\n---\n" + kwokMetricsConfig()
	}
	if err := os.WriteFile(kwokStages, []byte(stages), 0o644); err != nil {
		return err
	}
	if p.KwokPort, err = freePort(); err != nil {
		return err
	}
	// The nodes advertise kwok's port, or with pod streams the port of the kwok front, which
	// runs exec itself (kwok_front.go).
	p.KubeletPort = p.KwokPort
	if p.Streams != nil {
		if p.KubeletPort, err = freePort(); err != nil {
			return err
		}
	}
	kwok, err := s.start(ctx, "kwok", filepath.Join(s.binDir, "kwok"), []string{
		"--kubeconfig=" + kwokConfig, "--config=" + kwokStages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--cidr=" + s.spec.PodCIDR, "--node-ip=127.0.0.1", "--node-name=kwok-controller",
		fmt.Sprintf("--node-port=%d", p.KubeletPort),
		fmt.Sprintf("--server-address=127.0.0.1:%d", p.KwokPort),
		"--tls-cert-file=" + kwokCert.CertPath, "--tls-private-key-file=" + kwokCert.KeyPath,
		"--node-lease-duration-seconds=40",
	})
	if err != nil {
		return err
	}
	var front *Process
	if p.Streams != nil {
		if front, err = s.startKwokFront(ctx, p.KubeletPort, kwokCert); err != nil {
			return err
		}
	}

	cs, err := p.Clientset()
	if err != nil {
		return err
	}
	// metrics-server starts while the nodes come up; the plane waits for it at the end.
	metricsLive := func() error { return nil }
	if s.spec.Metrics {
		if metricsLive, err = s.startMetricsServer(ctx, cs); err != nil {
			return err
		}
	}
	if err := s.createNodes(ctx, cs); err != nil {
		return err
	}
	if err := waitFor(ctx, kwok, "kwok nodes Ready", func(ctx context.Context) error {
		return nodesReady(ctx, cs, p.NodeNames)
	}); err != nil {
		return err
	}
	// Pods can be created only once the ServiceAccount controller made "default".
	if err := waitFor(ctx, kcm, "default ServiceAccount", func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	if front != nil {
		if err := waitKwokFront(ctx, front, p); err != nil {
			return err
		}
	}
	if sched.exited() {
		return fmt.Errorf("kube-scheduler exited; log tail:\n%s", sched.logTail(30))
	}
	if s.spec.RBACFile != "" {
		if p.BurstletKubeconfig, err = createBurstletIdentity(ctx, cs, p, s.spec.RBACFile); err != nil {
			return err
		}
	}
	if err := s.installCRDs(ctx); err != nil {
		return err
	}
	if s.spec.CCI != nil {
		p.CCI = s.spec.CCI
		if err := s.installCCI(ctx, cs); err != nil {
			return fmt.Errorf("CCI mode: %w", err)
		}
	}
	return metricsLive()
}

func (s *planeStarter) createNodes(ctx context.Context, cs kubernetes.Interface) error {
	pool := s.spec.Nodes
	for i := 0; i < pool.Count; i++ {
		name := fmt.Sprintf("%s-%d", pool.Prefix, i)
		labels := map[string]string{
			"type":                   "kwok",
			"kubernetes.io/hostname": name,
			"kubernetes.io/os":       "linux",
			"kubernetes.io/arch":     "amd64",
			"kubernetes.io/role":     "agent",
		}
		for k, v := range pool.Labels {
			labels[k] = v
		}
		list := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(pool.CPU),
			corev1.ResourceMemory: resource.MustParse(pool.Memory),
			corev1.ResourcePods:   *resource.NewQuantity(int64(pool.Pods), resource.DecimalSI),
		}
		if pool.EphemeralStorage != "" {
			list[corev1.ResourceEphemeralStorage] = resource.MustParse(pool.EphemeralStorage)
		}
		annotations := map[string]string{KwokNodeAnnotation: "fake"}
		if s.spec.Metrics {
			annotations[ResourceMetricsPathAnnotation] = "/metrics/nodes/" + name + "/metrics/resource"
		}
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations},
			Status:     corev1.NodeStatus{Capacity: list, Allocatable: list},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil &&
			!apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
		s.plane.NodeNames = append(s.plane.NodeNames, name)
	}
	return nil
}

func nodesReady(ctx context.Context, cs kubernetes.Interface, names []string) error {
	for _, name := range names {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return fmt.Errorf("node %s not Ready yet", name)
		}
	}
	return nil
}

func writeCertKubeconfig(path string, p *Plane, user string, kp keyPair) error {
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[p.Name] = &clientcmdapi.Cluster{Server: p.Server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts[p.Name] = &clientcmdapi.Context{Cluster: p.Name, AuthInfo: user}
	cfg.CurrentContext = p.Name
	return clientcmd.WriteToFile(*cfg, path)
}

func adminHTTPClient(p *Plane) (*http.Client, error) {
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(p.AdminCert, p.AdminKey)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}, nil
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}
