package testbed

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// The API server proxies nodes/<n>/proxy to a node whose InternalIP is the test bed's node
// address, with its kubelet client certificate, and refuses a loopback one. Down removes the
// veth pair and the namespace.
func TestNodeProxyReachesTheNodeAddress(t *testing.T) {
	cfg := testConfig(t)
	tb, err := Up(context.Background(), cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	defer tb.Stop()
	nw := tb.Network
	ip := net.ParseIP(tb.NodeIP())
	if nw == nil || ip == nil || ip.IsLoopback() || !ip.IsGlobalUnicast() || nw.PeerIP == "" {
		t.Fatalf("network %+v: want a non-loopback node address", nw)
	}
	if !linkExists(nw.HostInterface) || !netnsExists(nw.Namespace) || len(nw.HostInterface) > 15 {
		t.Fatalf("veth %s or netns %s missing", nw.HostInterface, nw.Namespace)
	}
	if out, err := exec.Command("ip", "-n", nw.Namespace, "-4", "-o", "addr", "show", "dev",
		nw.PeerInterface).CombinedOutput(); err != nil || !strings.Contains(string(out), nw.PeerIP+"/30") {
		t.Errorf("peer end in %s: %v %s", nw.Namespace, err, out)
	}
	if loaded, err := Load(cfg.StateDir); err != nil || loaded.NodeIP() != tb.NodeIP() {
		t.Errorf("state.json node address: %v %+v", err, loaded)
	}

	// A tiny kubelet stand-in on the node address, with the plane's kubelet serving certificate.
	cert, err := tls.LoadX509KeyPair(tb.Cluster.KubeletServingCert, tb.Cluster.KubeletServingKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", net.JoinHostPort(tb.NodeIP(), "0"), &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert})
	if err != nil {
		t.Fatalf("listen on the node address: %v", err)
	}
	var mu sync.Mutex
	var callers []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cn := "(no client certificate)"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		callers = append(callers, r.URL.Path+" "+cn)
		mu.Unlock()
		fmt.Fprint(w, "ok from the node address")
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port

	// The veth pair carries traffic: from the namespace's end to the node address.
	peer := nw.Command(context.Background(), "curl", "-sk", "--max-time", "5",
		fmt.Sprintf("https://%s/from-netns", net.JoinHostPort(tb.NodeIP(), fmt.Sprint(port))))
	if out, err := peer.CombinedOutput(); err != nil || string(out) != "ok from the node address" {
		t.Errorf("curl from netns %s: %v %q", nw.Namespace, err, out)
	}
	mu.Lock()
	callers = nil
	mu.Unlock()

	ctx := context.Background()
	cs, err := tb.Cluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	for name, addr := range map[string]string{"proxy-probe": tb.NodeIP(), "proxy-loopback": "127.0.0.1"} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}},
			metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		patch := fmt.Sprintf(`{"status":{"addresses":[{"type":"InternalIP","address":%q}],`+
			`"daemonEndpoints":{"kubeletEndpoint":{"Port":%d}}}}`, addr, port)
		if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{},
			"status"); err != nil {
			t.Fatal(err)
		}
	}
	kubectl := func(path string) (string, error) {
		out, err := exec.Command(filepath.Join(cfg.BinDir, "kubectl"), "--kubeconfig", tb.Cluster.AdminKubeconfig,
			"get", "--raw", path).CombinedOutput()
		return string(out), err
	}
	out, err := kubectl("/api/v1/nodes/proxy-probe/proxy/healthz")
	if err != nil || out != "ok from the node address" {
		t.Fatalf("kubectl get --raw .../nodes/proxy-probe/proxy/healthz: %v: %q", err, out)
	}
	mu.Lock()
	got := strings.Join(callers, "; ")
	mu.Unlock()
	if got != "/healthz kube-apiserver-kubelet-client" {
		t.Errorf("the node address saw %q, want /healthz from the API server's kubelet client certificate", got)
	}
	if out, err := kubectl("/api/v1/nodes/proxy-loopback/proxy/healthz"); err == nil ||
		!strings.Contains(out, "address not allowed") {
		t.Errorf("proxy to a loopback node: %v %q, want address not allowed", err, out)
	}

	if err := Down(cfg.StateDir, true); err != nil {
		t.Fatalf("down: %v", err)
	}
	if linkExists(nw.HostInterface) || netnsExists(nw.Namespace) {
		t.Errorf("down left veth %s or netns %s", nw.HostInterface, nw.Namespace)
	}
}

// Two state directories get different names and /30s, also when the first /30 a state directory
// would take is in use on this machine.
func TestNetworksOfTwoStateDirsDoNotCollide(t *testing.T) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := setupNetwork(ctx, dirA)
	if err != nil {
		t.Fatal(err)
	}
	defer teardownNetwork(ctx, dirA, a)
	defer teardownNetwork(ctx, dirB, nil)
	// Occupy the /30 that dirB would take first.
	_, _, _, seed := networkNames(dirB)
	want := make(net.IP, 4)
	binary.BigEndian.PutUint32(want, binary.BigEndian.Uint32(networkBase)+(seed%networkBlocks)*4)
	want[3]++
	if err := ipCommand(ctx, "addr", "add", want.String()+"/30", "dev", a.HostInterface); err != nil {
		t.Fatal(err)
	}
	b, err := setupNetwork(ctx, dirB)
	if err != nil {
		t.Fatal(err)
	}
	if a.Namespace == b.Namespace || a.HostInterface == b.HostInterface || a.PeerInterface == b.PeerInterface {
		t.Errorf("names shared: %+v %+v", a, b)
	}
	_, na, _ := net.ParseCIDR(a.CIDR)
	_, nb, _ := net.ParseCIDR(b.CIDR)
	if na.Contains(nb.IP) || nb.Contains(na.IP) || b.HostIP == want.String() {
		t.Errorf("networks overlap: %s %s (taken %s)", a.CIDR, b.CIDR, want)
	}
	for _, ip := range []string{a.HostIP, b.HostIP} {
		if _, err := FreePort(ip); err != nil {
			t.Errorf("listen on %s: %v", ip, err)
		}
	}
	teardownNetwork(ctx, dirB, b)
	if linkExists(b.HostInterface) || netnsExists(b.Namespace) {
		t.Errorf("teardown left %+v", b)
	}
}
