package tests

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"

	"burstlet/e2e/testbed"
)

// burstPod runs one pod on the daemon's virtual node (so on the backend) and waits until it
// is Running there.
func burstPod(t *testing.T, d *daemon) (ns, name string) {
	t.Helper()
	ns, name = namespace(t, env.cluster), "burst"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "burst"}},
		Spec: cciPodSpec(d)}
	pod.Spec.Containers[0].Name = "app"
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	if _, err := env.cluster.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "the burst pod Running", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	return ns, name
}

func clusterRESTConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := env.tb.Cluster.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// nodeProxy GETs /api/v1/nodes/<node>/proxy/<path> through the cluster's API server.
func nodeProxy(t *testing.T, node, path string) ([]byte, error) {
	t.Helper()
	return env.cluster.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy", path).
		DoRaw(context.Background())
}

// The kubelet API of a burst pod through the cluster's API server, as kubectl uses it: logs,
// exec, attach, port-forward (WebSocket passed through to burstlet, and SPDY), stats and resource
// metrics, pod lists; and refusals of callers without the right credentials.
func TestKubeletAPIThroughTheCluster(t *testing.T) {
	st := env.tb.Backend.Streams
	if st == nil {
		t.Fatal("the backend plane has no pod streams (testbed.PodStreams)")
	}
	c := startCciDaemon(t)
	node, err := env.cluster.CoreV1().Nodes().Get(context.Background(), c.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API server passes WebSockets through to the node only when it declares so.
	if fs := node.Status.DeclaredFeatures; len(fs) != 1 || fs[0] != "ExtendWebSocketsToKubelet" {
		t.Errorf("declared features %v, want [ExtendWebSocketsToKubelet]", fs)
	}
	ns, pod := burstPod(t, c.daemon)
	cfg := clusterRESTConfig(t)
	t.Run("logs", func(t *testing.T) { clusterLogs(t, st, ns, pod) })
	t.Run("exec", func(t *testing.T) { clusterExec(t, cfg, c, ns, pod) })
	t.Run("attach", func(t *testing.T) { clusterAttach(t, st, cfg, ns, pod) })
	t.Run("portforward", func(t *testing.T) { clusterPortForward(t, st, cfg, ns, pod) })
	t.Run("pods", func(t *testing.T) { clusterNodePods(t, c.daemon, ns, pod) })
	t.Run("stats", func(t *testing.T) { clusterStats(t, c.daemon, ns, pod) })
	t.Run("refusals", func(t *testing.T) { kubeletRefusals(t, c.daemon, ns) })
}

// Without ExtendWebSocketsToKubelet declared, the API server translates a WebSocket exec to SPDY
// toward burstlet: the SPDY path of exec and attach.
func TestKubeletAPISpdyFromTheAPIServer(t *testing.T) {
	c := startCciDaemon(t, withKubeletConfig("  webSocketsToKubelet: false\n"))
	node, err := env.cluster.CoreV1().Nodes().Get(context.Background(), c.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(node.Status.DeclaredFeatures) != 0 {
		t.Fatalf("declared features %v, want none", node.Status.DeclaredFeatures)
	}
	ns, pod := burstPod(t, c.daemon)
	clusterExec(t, clusterRESTConfig(t), c, ns, pod)
}

func clusterLogs(t *testing.T, st *testbed.PodStreams, ns, pod string) {
	ctx := context.Background()
	pods := env.cluster.CoreV1().Pods(ns)
	mark := fmt.Sprintf("kubelet-api-%d", time.Now().UnixNano())
	if err := testbed.AppendLog(st.LogFile, "stdout", mark+" one", mark+" two"); err != nil {
		t.Fatal(err)
	}
	tail := int64(2)
	data, err := pods.GetLogs(pod, &corev1.PodLogOptions{Container: "app", TailLines: &tail}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	if got := string(data); got != mark+" one\n"+mark+" two\n" {
		t.Errorf("tail 2: %q", got)
	}
	data, err = pods.GetLogs(pod, &corev1.PodLogOptions{Container: "app", TailLines: &tail, Timestamps: true}).
		DoRaw(ctx)
	if err != nil || !strings.Contains(string(data), "Z "+mark+" two\n") {
		t.Errorf("timestamps: %v %q", err, data)
	}
	since := int64(3600)
	data, err = pods.GetLogs(pod, &corev1.PodLogOptions{Container: "app", SinceSeconds: &since}).DoRaw(ctx)
	if err != nil || !strings.Contains(string(data), mark+" two\n") {
		t.Errorf("sinceSeconds: %v %q", err, data)
	}
	// A container the pod does not have: the kubelet API's 404 reaches the client.
	if _, err := pods.GetLogs(pod, &corev1.PodLogOptions{Container: "nope"}).DoRaw(ctx); err == nil {
		t.Error("logs of an unknown container succeeded")
	}
	// follow: a line written later arrives on the open stream. (kwok sends the response head of
	// a followed log only with its first line, so the line is written while the stream opens.)
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	later := mark + " later"
	writing := make(chan struct{})
	defer close(writing)
	go func() {
		for {
			if err := testbed.AppendLog(st.LogFile, "stdout", later); err != nil {
				return
			}
			select {
			case <-writing:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	zero := int64(0)
	stream, err := pods.GetLogs(pod, &corev1.PodLogOptions{Container: "app", Follow: true, TailLines: &zero}).
		Stream(fctx)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	defer stream.Close()
	sc := bufio.NewScanner(stream)
	for sc.Scan() {
		if sc.Text() == later {
			return
		}
	}
	t.Fatalf("the followed line did not arrive: %v", sc.Err())
}

func clusterExec(t *testing.T, cfg *rest.Config, c *cciDaemon, ns, pod string) {
	for _, ex := range executors {
		t.Run(ex.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			run := func(opts *corev1.PodExecOptions, stdin io.Reader) (string, string, error) {
				t.Helper()
				return runExec(ctx, t, ex, cfg, execURL(env.cluster, ns, pod, opts), opts.TTY, stdin)
			}
			// The command runs in the backend pod (its namespace is the backend's).
			out, errOut, err := run(&corev1.PodExecOptions{Container: "app", Stdout: true, Stderr: true,
				Command: []string{"sh", "-c", "echo hi; echo oops >&2; echo $" + testbed.ExecPodNamespaceEnv +
					"; exit 3"}}, nil)
			if exitCode(err) != 3 {
				t.Errorf("exit: %v, want code 3", err)
			}
			if want := "hi\n" + c.backendNamespace() + "\n"; out != want || errOut != "oops\n" {
				t.Errorf("stdout %q stderr %q, want %q and oops", out, errOut, want)
			}
			out, _, err = run(&corev1.PodExecOptions{Container: "app", Stdin: true, Stdout: true, Stderr: true,
				Command: []string{"sh", "-c", "tr a-z A-Z"}}, strings.NewReader("hello\nworld\n"))
			if err != nil || out != "HELLO\nWORLD\n" {
				t.Errorf("stdin: %v %q", err, out)
			}
			out, _, err = run(&corev1.PodExecOptions{Container: "app", Stdin: true, Stdout: true, TTY: true,
				Command: []string{"sh", "-c", "test -t 0 && read line; echo got:$line; exit 5"}},
				strings.NewReader("typed\n"))
			if exitCode(err) != 5 || !strings.HasSuffix(out, "got:typed\r\n") {
				t.Errorf("tty with stdin: %v %q", err, out)
			}
			// A TTY resized by the client: the command sees the size.
			e, err := ex.make(cfg, execURL(env.cluster, ns, pod, &corev1.PodExecOptions{Container: "app",
				Stdout: true, TTY: true, Command: []string{"sh", "-c", "sleep 1; stty size"}}))
			if err != nil {
				t.Fatal(err)
			}
			var sized syncBuffer
			err = e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &sized, Tty: true,
				TerminalSizeQueue: &oneSize{size: &remotecommand.TerminalSize{Width: 123, Height: 45}}})
			if err != nil || sized.String() != "45 123\r\n" {
				t.Errorf("tty resize: %v %q, want 45 123", err, sized.String())
			}
			// kubectl cp: tar over exec, into the container and back out.
			dir := fmt.Sprintf("/tmp/burstlet-cp-%s-%d", ex.name, time.Now().UnixNano())
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			payload := fmt.Sprintf("payload-%d\n", time.Now().UnixNano())
			var archive bytes.Buffer
			tw := tar.NewWriter(&archive)
			_ = tw.WriteHeader(&tar.Header{Name: "file.txt", Mode: 0o644, Size: int64(len(payload))})
			_, _ = tw.Write([]byte(payload))
			_ = tw.Close()
			_, errOut, err = run(&corev1.PodExecOptions{Container: "app", Stdin: true, Stdout: true, Stderr: true,
				Command: []string{"sh", "-c", "mkdir -p " + dir + " && tar xf - -C " + dir}},
				bytes.NewReader(archive.Bytes()))
			if err != nil {
				t.Fatalf("cp into the pod: %v %s", err, errOut)
			}
			out, errOut, err = run(&corev1.PodExecOptions{Container: "app", Stdout: true, Stderr: true,
				Command: []string{"tar", "cf", "-", "-C", dir, "file.txt"}}, nil)
			if err != nil {
				t.Fatalf("cp out of the pod: %v %s", err, errOut)
			}
			tr := tar.NewReader(strings.NewReader(out))
			hdr, err := tr.Next()
			if err != nil || hdr.Name != "file.txt" {
				t.Fatalf("archive from the pod: %v %v", hdr, err)
			}
			back, _ := io.ReadAll(tr)
			if string(back) != payload {
				t.Errorf("copied back %q, want %q", back, payload)
			}
		})
	}
}

// oneSize reports one terminal size, then none (the queue's end).
type oneSize struct{ size *remotecommand.TerminalSize }

func (q *oneSize) Next() *remotecommand.TerminalSize {
	s := q.size
	q.size = nil
	return s
}

func clusterAttach(t *testing.T, st *testbed.PodStreams, cfg *rest.Config, ns, pod string) {
	for _, ex := range executors {
		t.Run(ex.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			e, err := ex.make(cfg, attachURL(env.cluster, ns, pod, &corev1.PodAttachOptions{Container: "app",
				Stdout: true, Stderr: true}))
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
			}()
			mark := fmt.Sprintf("cluster-attach-%s-%d", ex.name, time.Now().UnixNano())
			eventually(t, 30*time.Second, "an attached line", func() error {
				select {
				case err := <-done:
					t.Fatalf("attach ended: %v", err)
				default:
				}
				if err := testbed.AppendLog(st.AttachFile, "stdout", mark); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(stdout.String(), mark+"\n") {
					return fmt.Errorf("stdout %q", stdout.String())
				}
				return nil
			})
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("attach did not end when its context did")
			}
		})
	}
}

func clusterPortForward(t *testing.T, st *testbed.PodStreams, cfg *rest.Config, ns, pod string) {
	targetServer(t, st.PortForwardTarget)
	u := env.cluster.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).
		SubResource("portforward").URL()
	dialers := map[string]func(*testing.T) httpstream.Dialer{
		"spdy": func(t *testing.T) httpstream.Dialer {
			rt, upgrader, err := spdy.RoundTripperFor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
		},
		"websocket": func(t *testing.T) httpstream.Dialer {
			d, err := portforward.NewSPDYOverWebsocketDialer(u, cfg)
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	}
	for name, dial := range dialers {
		t.Run(name, func(t *testing.T) {
			stop, ready := make(chan struct{}), make(chan struct{})
			var out, errOut syncBuffer
			fw, err := portforward.New(dial(t), []string{"0:8080"}, stop, ready, &out, &errOut)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- fw.ForwardPorts() }()
			defer func() {
				close(stop)
				<-done
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("port-forward: %v (%s)", err, errOut.String())
			case <-time.After(30 * time.Second):
				t.Fatal("port-forward not ready")
			}
			ports, err := fw.GetPorts()
			if err != nil || len(ports) != 1 {
				t.Fatalf("ports %v %v", ports, err)
			}
			local := fmt.Sprintf("127.0.0.1:%d", ports[0].Local)
			for i := 0; i < 2; i++ {
				if got := talk(t, local, "target here", "hello "+name); got != "HELLO "+strings.ToUpper(name) {
					t.Errorf("forwarded port 8080: %q", got)
				}
			}
		})
	}
}

func clusterNodePods(t *testing.T, d *daemon, ns, pod string) {
	for _, path := range []string{"pods", "runningpods/"} {
		data, err := nodeProxy(t, d.node, path)
		if err != nil {
			t.Fatalf("nodes/%s/proxy/%s: %v", d.node, path, err)
		}
		var list corev1.PodList
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("%s: %v: %s", path, err, data)
		}
		found := false
		for _, p := range list.Items {
			found = found || (p.Namespace == ns && p.Name == pod)
		}
		if !found {
			t.Errorf("%s does not list %s/%s: %s", path, ns, pod, data)
		}
	}
}

func clusterStats(t *testing.T, d *daemon, ns, pod string) {
	// The backend's metrics-server needs a scrape or two before PodMetrics exist.
	eventually(t, 120*time.Second, "the burst pod in the stats summary", func() error {
		data, err := nodeProxy(t, d.node, "stats/summary")
		if err != nil {
			return err
		}
		var summary struct {
			Node struct {
				NodeName string `json:"nodeName"`
			} `json:"node"`
			Pods []struct {
				PodRef struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"podRef"`
				Containers []struct {
					Name   string `json:"name"`
					Memory struct {
						WorkingSetBytes uint64 `json:"workingSetBytes"`
					} `json:"memory"`
				} `json:"containers"`
			} `json:"pods"`
		}
		if err := json.Unmarshal(data, &summary); err != nil {
			return fmt.Errorf("%v: %s", err, data)
		}
		if summary.Node.NodeName != d.node {
			return fmt.Errorf("node %q", summary.Node.NodeName)
		}
		for _, p := range summary.Pods {
			if p.PodRef.Namespace == ns && p.PodRef.Name == pod && len(p.Containers) == 1 &&
				p.Containers[0].Memory.WorkingSetBytes > 0 {
				return nil
			}
		}
		return fmt.Errorf("summary %s", data)
	})
	data, err := nodeProxy(t, d.node, "metrics/resource")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`container_memory_working_set_bytes{container="app",namespace="%s",pod="%s"}`, ns, pod)
	if !strings.Contains(string(data), want) || !strings.Contains(string(data), "container_cpu_usage_seconds_total{") {
		t.Errorf("metrics/resource lacks %s:\n%s", want, data)
	}
	// kubectl top: the cluster's metrics-server scrapes the virtual node.
	eventually(t, 120*time.Second, "PodMetrics of the burst pod in the cluster", func() error {
		data, err := env.cluster.CoreV1().RESTClient().Get().
			AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces", ns, "pods", pod).DoRaw(context.Background())
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), `"name":"app"`) {
			return fmt.Errorf("%s", data)
		}
		return nil
	})
}

// kubeletRefusals calls the kubelet API directly: without credentials, with a token whose
// identity lacks nodes/proxy, and with a client certificate from another CA.
func kubeletRefusals(t *testing.T, d *daemon, ns string) {
	base := "https://" + d.kubeletAddr()
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // burstlet's self-signed serving cert
	get := func(client *http.Client, path, token string) (int, string, error) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: insecure}}
	if code, body, err := get(plain, "/pods", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d %q %v, want 401", code, body, err)
	}
	// A ServiceAccount with no RBAC at all: authenticated, not allowed.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}
	if _, err := env.cluster.CoreV1().ServiceAccounts(ns).Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := env.cluster.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "nobody",
		&authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := get(plain, "/containerLogs/"+ns+"/burst/app", tok.Status.Token)
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, "subresource=proxy") {
		t.Errorf("token without nodes/proxy: %d %q %v, want 403", code, body, err)
	}
	if strings.Contains(body, tok.Status.Token) {
		t.Error("the refusal repeats the token")
	}
	if code, _, err := get(plain, "/pods", "not-a-token"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("bad token: %d %v, want 401", code, err)
	}
	// A client certificate from a CA burstlet does not trust: refused in the handshake.
	other := selfSignedClientCert(t, "system:masters-impostor")
	foreign := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{other}}}} //nolint:gosec
	if code, _, err := get(foreign, "/pods", ""); err == nil && code == http.StatusOK {
		t.Error("a client certificate from another CA was accepted")
	}
}

func selfSignedClientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: cn, Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// With serverTLSBootstrap the kubelet API's certificate comes from the cluster's CSR API
// (kubernetes.io/kubelet-serving, approved by burstlet itself here, signed by the
// controller-manager): a client that trusts only the cluster CA verifies the node.
func TestKubeletServingCertificateFromTheCluster(t *testing.T) {
	config := fmt.Sprintf("%s/burstlet.yaml", t.TempDir())
	if err := os.WriteFile(config, []byte("kubeletApi:\n  serverTLSBootstrap: true\n  approveOwnRequest: true\n"),
		0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", config)
	caPEM, err := os.ReadFile(env.tb.Cluster.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	var served *x509.Certificate
	eventually(t, 60*time.Second, "a serving certificate the cluster CA verifies", func() error {
		conn, err := tls.Dial("tcp", d.kubeletAddr(), &tls.Config{RootCAs: roots, ServerName: d.nodeIP})
		if err != nil {
			return err
		}
		defer conn.Close()
		served = conn.ConnectionState().PeerCertificates[0]
		return nil
	})
	if want := "system:node:" + d.node; served.Subject.CommonName != want {
		t.Errorf("subject CN %q, want %q", served.Subject.CommonName, want)
	}
	csrs, err := env.cluster.CertificatesV1().CertificateSigningRequests().List(context.Background(),
		metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range csrs.Items {
		if strings.HasPrefix(c.Name, "burstlet-serving-"+d.node+"-") {
			found = c.Spec.SignerName == "kubernetes.io/kubelet-serving" && len(c.Status.Certificate) > 0
			_ = env.cluster.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), c.Name,
				metav1.DeleteOptions{})
		}
	}
	if !found {
		t.Error("no issued kubelet-serving CSR of the node")
	}
}
