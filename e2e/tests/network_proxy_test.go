package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"burstlet/e2e/testbed"
)

// The real traffic test: a backend pod's network proxy sidecar (`burstlet netproxy`, the
// container burstlet adds to the pod) run for real in a network namespace standing in for the burst
// pod, with the credentials burstlet wrote to the backend, carries TCP and UDP to ClusterIPs of
// the cluster's Services onto their EndpointSlices' endpoints (network namespaces standing in for
// cluster pods), follows endpoint changes, refuses a Service without endpoints at once, and
// carries the pod's DNS queries (the cluster DNS burstlet wrote into the backend pod) to the
// cluster DNS's endpoint.
func TestNetworkProxyCarriesClusterTraffic(t *testing.T) {
	applyNetproxyRBAC(t)
	lab := newNetLab(t)
	ctx := context.Background()
	ns := namespace(t, env.cluster)

	// The API server, as the burst pod reaches it: an address of the node's network (the API
	// server's certificate names localhost, hence apiServerName).
	apiURL, err := url.Parse(env.tb.Cluster.Server)
	if err != nil {
		t.Fatal(err)
	}
	apiServer := forwardTCP(t, lab.hostIP, apiURL.Host)

	// The cluster's Services, without selectors: their EndpointSlices are the test's.
	dnsSvc := createService(t, ns, "dns", corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53,
		TargetPort: intstr.FromInt32(53)})
	echo := createService(t, ns, "echo",
		corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
		corev1.ServicePort{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 81, TargetPort: intstr.FromInt32(8081)})
	dnsIP, echoIP := dnsSvc.Spec.ClusterIP, echo.Spec.ClusterIP
	echoPorts := []discoveryv1.EndpointPort{
		{Name: strp("http"), Protocol: protop(corev1.ProtocolTCP), Port: int32p(8080)},
		{Name: strp("udp"), Protocol: protop(corev1.ProtocolUDP), Port: int32p(8081)}}
	putEndpointSlice(t, ns, "dns-1", "dns",
		[]discoveryv1.EndpointPort{{Name: strp("dns"), Protocol: protop(corev1.ProtocolUDP), Port: int32p(53)}},
		endpoint(lab.dnsIP, true, false))
	putEndpointSlice(t, ns, "echo-1", "echo", echoPorts, endpoint(lab.ep1IP, true, false))

	// The cluster pods' and the cluster DNS's servers.
	for _, s := range []struct{ netns, ip, name string }{{lab.ep1, lab.ep1IP, "ep1"}, {lab.ep2, lab.ep2IP, "ep2"}} {
		serveTCPName(t, s.netns, net.JoinHostPort(s.ip, "8080"), s.name)
		serveUDPName(t, s.netns, net.JoinHostPort(s.ip, "8081"), s.name)
	}
	echoName := fmt.Sprintf("echo.%s.svc.cluster.local.", ns)
	dnsQueries := serveDNS(t, lab.dns, net.JoinHostPort(lab.dnsIP, "53"), echoName, net.ParseIP(echoIP))

	d := startCciDaemon(t, withConfig(fmt.Sprintf(`network:
  clusterDNS: [%s]
  apiServer: "%s"
  apiServerName: localhost
  proxy:
    enabled: true
    image: "burstlet:e2e"
    command: ["burstlet"]
`, dnsIP, apiServer)))
	bns := d.backendNamespace()

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "client"}, Spec: cciPodSpec(d.daemon)}
	if pod, err = env.cluster.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var backend *corev1.Pod
	eventually(t, 60*time.Second, "client Running with its backend pod", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := runningOn(p, d.node); err != nil {
			return err
		}
		pod = p
		if backend = backendPodFor(t, bns, p); backend == nil {
			return fmt.Errorf("no backend pod for %s", p.Name)
		}
		return nil
	})

	// The backend pod resolves with the cluster DNS.
	if backend.Spec.DNSPolicy != corev1.DNSNone {
		t.Errorf("backend dnsPolicy %q, want None", backend.Spec.DNSPolicy)
	}
	checkDNSConfig(t, backend.Spec.DNSConfig, []string{dnsIP},
		[]string{ns + ".svc.cluster.local", "svc.cluster.local", "cluster.local"},
		[]corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("5")}})

	// Its service variables are the ClusterIPs (the proxy carries them).
	kubernetesSvc, err := env.cluster.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vars := appEnv(t, backend)
	for name, want := range map[string]string{
		"KUBERNETES_SERVICE_HOST": kubernetesSvc.Spec.ClusterIP, "KUBERNETES_SERVICE_PORT": "443",
		"ECHO_SERVICE_HOST": echoIP, "ECHO_SERVICE_PORT": "80", "ECHO_SERVICE_PORT_HTTP": "80",
		"MODE": "e2e",
	} {
		if got, ok := vars[name]; !ok || got != want {
			t.Errorf("backend app env %s = %q (set %v), want %q", name, got, ok, want)
		}
	}

	// The sidecar and its credentials.
	var sidecar *corev1.Container
	for i := range backend.Spec.Containers {
		if backend.Spec.Containers[i].Name == "burstlet-netproxy" {
			sidecar = &backend.Spec.Containers[i]
		}
	}
	if sidecar == nil {
		t.Fatalf("backend pod %s has no burstlet-netproxy container: %+v", backend.Name, backend.Spec.Containers)
	}
	if sidecar.Image != "burstlet:e2e" || strings.Join(sidecar.Command, " ") != "burstlet" ||
		!strings.Contains(" "+strings.Join(sidecar.Args, " ")+" ", " netproxy ") {
		t.Errorf("sidecar image %q command %q args %q", sidecar.Image, sidecar.Command, sidecar.Args)
	}
	if sc := sidecar.SecurityContext; sc == nil || sc.Capabilities == nil ||
		!containsCap(sc.Capabilities.Add, "NET_ADMIN") || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("sidecar securityContext %+v, want NET_ADMIN added and runAsUser 0", sidecar.SecurityContext)
	}
	var secretName string
	for _, v := range backend.Spec.Volumes {
		if v.Name == "burstlet-netproxy" && v.Secret != nil {
			secretName = v.Secret.SecretName
		}
	}
	if secretName == "" {
		t.Fatalf("backend pod %s has no secret volume burstlet-netproxy: %+v", backend.Name, backend.Spec.Volumes)
	}
	var credentials map[string][]byte
	eventually(t, 30*time.Second, "the proxy's credentials on the backend", func() error {
		s, err := env.backend.CoreV1().Secrets(bns).Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, k := range []string{"token", "ca.crt", "server", "tls-server-name"} {
			if len(s.Data[k]) == 0 {
				return fmt.Errorf("secret %s has no %s (keys %v)", secretName, k, keysOf(s.Data))
			}
		}
		credentials = s.Data
		return nil
	})
	credentialsRead := time.Now()
	if got, want := string(credentials["server"]), "https://"+apiServer; got != want {
		t.Errorf("credentials' server %q, want %q", got, want)
	}
	if got := string(credentials["tls-server-name"]); got != "localhost" {
		t.Errorf("credentials' tls-server-name %q, want localhost", got)
	}

	// The cluster never sees the sidecar.
	for _, c := range pod.Spec.Containers {
		if c.Name == "burstlet-netproxy" {
			t.Errorf("cluster pod spec shows the sidecar")
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == "burstlet-netproxy" {
			t.Errorf("cluster pod spec shows the sidecar's volume")
		}
	}
	if n := len(pod.Status.ContainerStatuses); n != 1 || pod.Status.ContainerStatuses[0].Name != "app" {
		t.Errorf("cluster pod container statuses %+v, want app alone", pod.Status.ContainerStatuses)
	}

	// The sidecar, run for real in the burst pod's stand-in with what burstlet gave it.
	lab.runNetproxy(t, sidecar, credentials)

	echoTCP := net.JoinHostPort(echoIP, "80")
	echoUDP := net.JoinHostPort(echoIP, "81")
	answers := func(want string) func() error {
		return func() error {
			lab.netproxyRunning(t)
			for _, c := range []struct {
				addr string
				ask  func(netns, addr string) (string, error)
			}{{echoTCP, lab.askTCP}, {echoUDP, lab.askUDP}} {
				got, err := c.ask(lab.burst, c.addr)
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("%s answered %q, want %q", c.addr, got, want)
				}
			}
			return nil
		}
	}
	eventually(t, 30*time.Second, "TCP and UDP to echo's ClusterIP answered by ep1", answers("ep1"))

	// The sidecar's postStart hook (what holds the pod's own containers until the rules are in
	// place) returns at once now that they are.
	if sidecar.Lifecycle == nil || sidecar.Lifecycle.PostStart == nil || sidecar.Lifecycle.PostStart.Exec == nil ||
		len(sidecar.Lifecycle.PostStart.Exec.Command) < 2 || sidecar.Lifecycle.PostStart.Exec.Command[0] != "burstlet" {
		t.Fatalf("sidecar lifecycle %+v, want a postStart exec of burstlet", sidecar.Lifecycle)
	}
	hook := append([]string{"netns", "exec", lab.burst, os.Getenv("BURSTLET")}, sidecar.Lifecycle.PostStart.Exec.Command[1:]...)
	started := time.Now()
	if out, err := exec.Command("ip", hook...).CombinedOutput(); err != nil {
		t.Errorf("the postStart hook %q: %v\n%s", sidecar.Lifecycle.PostStart.Exec.Command, err, out)
	} else if took := time.Since(started); took > 5*time.Second {
		t.Errorf("the postStart hook took %v with the rules in place", took)
	}
	if backend.Spec.Containers[0].Name != "burstlet-netproxy" {
		t.Errorf("the sidecar is not the pod's first container: %s first", backend.Spec.Containers[0].Name)
	}

	// Both ready: new connections go to either.
	putEndpointSlice(t, ns, "echo-1", "echo", echoPorts, endpoint(lab.ep1IP, true, false), endpoint(lab.ep2IP, true, false))
	eventually(t, 15*time.Second, "new connections spread over ep1 and ep2", func() error {
		lab.netproxyRunning(t)
		seen := map[string]int{}
		for i := 0; i < 40; i++ {
			got, err := lab.askTCP(lab.burst, echoTCP)
			if err != nil {
				return err
			}
			seen[got]++
		}
		if seen["ep1"] == 0 || seen["ep2"] == 0 || len(seen) != 2 {
			return fmt.Errorf("40 connections answered %v", seen)
		}
		return nil
	})

	// ep2 alone: within a few seconds every new connection answers ep2.
	changed := time.Now()
	putEndpointSlice(t, ns, "echo-1", "echo", echoPorts, endpoint(lab.ep2IP, true, false))
	eventually(t, 10*time.Second, "TCP and UDP answered by ep2 alone", func() error {
		for i := 0; i < 5; i++ {
			if err := answers("ep2")(); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("endpoint change carried in %v", time.Since(changed).Round(10*time.Millisecond))

	// No ready endpoint: the terminating one still serving takes new connections.
	putEndpointSlice(t, ns, "echo-1", "echo", echoPorts, endpoint(lab.ep1IP, false, true))
	eventually(t, 10*time.Second, "the terminating ep1 answers when none is ready", func() error {
		for i := 0; i < 5; i++ {
			if err := answers("ep1")(); err != nil {
				return err
			}
		}
		return nil
	})

	// No endpoints: refused at once, not left to time out.
	putEndpointSlice(t, ns, "echo-1", "echo", echoPorts)
	eventually(t, 10*time.Second, "echo refused without endpoints", func() error {
		lab.netproxyRunning(t)
		start := time.Now()
		got, err := lab.askTCP(lab.burst, echoTCP)
		if err == nil {
			return fmt.Errorf("TCP answered %q", got)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("TCP: %v, want connection refused", err)
		}
		if took := time.Since(start); took > time.Second {
			return fmt.Errorf("TCP refused after %v", took)
		}
		return lab.udpRefused(lab.burst, echoUDP)
	})

	// The master Service: KUBERNETES_SERVICE_HOST (its ClusterIP) reaches the API server at the
	// address the proxy itself uses (network.apiServer: the forwarder), not at the one the API
	// server advertises (the testbed's is loopback).
	caPEM, err := os.ReadFile(env.tb.Cluster.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the kubernetes ClusterIP reaches the API server", func() error {
		lab.netproxyRunning(t)
		code, err := lab.askAPIServer(lab.burst, net.JoinHostPort(kubernetesSvc.Spec.ClusterIP, "443"), "localhost", caPEM)
		if err != nil {
			return err
		}
		if code != 200 && code != 401 && code != 403 {
			return fmt.Errorf("GET /version through the kubernetes ClusterIP answered %d", code)
		}
		return nil
	})

	// DNS: the pod's query to the cluster DNS's ClusterIP reaches the DNS pod through the DNAT.
	eventually(t, 10*time.Second, "echo's name resolved through the cluster DNS's ClusterIP", func() error {
		lab.netproxyRunning(t)
		ip, err := lab.resolve(lab.burst, net.JoinHostPort(dnsIP, "53"), echoName)
		if err != nil {
			return err
		}
		if ip != echoIP {
			return fmt.Errorf("%s resolved to %s, want %s", echoName, ip, echoIP)
		}
		return nil
	})
	if q := dnsQueries(); len(q) == 0 || q[len(q)-1] != lab.burstIP+" "+echoName {
		t.Errorf("the DNS server saw %q, want a query for %s from the burst pod %s", q, echoName, lab.burstIP)
	}

	// A pod that runs to completion (a Job's): the sidecar gets the pod's annotations as its stop
	// file, and once the pod's own container has exited burstlet tells it to stop (the backend's
	// kwok stands in for the sidecar reading it and exiting), so the pod ends Succeeded.
	job := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job",
		Annotations: map[string]string{testbed.ExitCodeAnnotation: "0"}}, Spec: cciPodSpec(d.daemon)}
	job.Spec.RestartPolicy = corev1.RestartPolicyNever
	if job, err = env.cluster.CoreV1().Pods(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the job pod Succeeded with its sidecar told to stop", func() error {
		p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		b := backendPodFor(t, bns, p)
		if b == nil {
			return fmt.Errorf("no backend pod for %s", p.Name)
		}
		if b.Annotations[testbed.InjectedStopAnnotation] != "true" {
			return fmt.Errorf("backend pod annotations %v, backend phase %s", b.Annotations, b.Status.Phase)
		}
		stopFile := false
		for _, c := range b.Spec.Containers {
			for _, a := range c.Args {
				stopFile = stopFile || (c.Name == "burstlet-netproxy" && strings.HasPrefix(a, "--stop-file="))
			}
		}
		if !stopFile {
			return fmt.Errorf("the sidecar of a restartPolicy Never pod has no --stop-file")
		}
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("job phase %s", p.Status.Phase)
		}
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil ||
			p.Status.ContainerStatuses[0].State.Terminated.ExitCode != 0 {
			return fmt.Errorf("job container statuses %+v", p.Status.ContainerStatuses)
		}
		return nil
	})

	// The credentials outlive many sweeps of unreferenced copies (sweepInterval 1s): they are the
	// node's, not a copy.
	if s, err := env.backend.CoreV1().Secrets(bns).Get(ctx, secretName, metav1.GetOptions{}); err != nil {
		t.Errorf("the proxy's credentials %s, %v after they were written: %v", secretName,
			time.Since(credentialsRead).Round(time.Second), err)
	} else if len(s.Data["token"]) == 0 {
		t.Errorf("the proxy's credentials %s lost their token: keys %v", secretName, keysOf(s.Data))
	}
}

// Without the proxy: a ClusterFirst pod's own dnsConfig is merged after the cluster's, a Default
// pod keeps its DNS, service variables are left out but KUBERNETES_SERVICE_* point at the
// configured API server address, and in CCI mode searches are cut to CCI's 6 with the kubelet's
// Warning event.
func TestBurstPodDnsAndEnvironmentWithoutProxy(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, env.cluster)
	createService(t, ns, "web", corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
		TargetPort: intstr.FromInt32(8080)})
	d := startCciDaemon(t, withConfig(`network:
  clusterDNS: [10.96.0.10]
  apiServer: "10.253.0.1:6443"
`))
	bns := d.backendNamespace()

	own := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "own-dns"}, Spec: cciPodSpec(d.daemon)}
	own.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"corp.example"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("2")}, {Name: "edns0"}}}
	def := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "default-dns"}, Spec: cciPodSpec(d.daemon)}
	def.Spec.DNSPolicy = corev1.DNSDefault
	many := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "many-searches"}, Spec: cciPodSpec(d.daemon)}
	many.Spec.DNSConfig = &corev1.PodDNSConfig{}
	for i := 1; i <= 7; i++ {
		many.Spec.DNSConfig.Searches = append(many.Spec.DNSConfig.Searches, fmt.Sprintf("s%d.example", i))
	}
	backends := map[string]*corev1.Pod{}
	for _, p := range []*corev1.Pod{own, def, many} {
		if _, err := env.cluster.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
	}
	eventually(t, 60*time.Second, "the pods Running with their backend pods", func() error {
		for _, name := range []string{own.Name, def.Name, many.Name} {
			p, err := env.cluster.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if err := runningOn(p, d.node); err != nil {
				return err
			}
			b := backendPodFor(t, bns, p)
			if b == nil {
				return fmt.Errorf("no backend pod for %s", name)
			}
			backends[name] = b
		}
		return nil
	})

	b := backends[own.Name]
	if b.Spec.DNSPolicy != corev1.DNSNone {
		t.Errorf("own-dns: backend dnsPolicy %q, want None", b.Spec.DNSPolicy)
	}
	checkDNSConfig(t, b.Spec.DNSConfig, []string{"10.96.0.10", "1.1.1.1"},
		[]string{ns + ".svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"},
		[]corev1.PodDNSConfigOption{{Name: "edns0"}, {Name: "ndots", Value: strp("2")}})
	vars := appEnv(t, b)
	for name, want := range map[string]string{"KUBERNETES_SERVICE_HOST": "10.253.0.1", "KUBERNETES_SERVICE_PORT": "6443",
		"KUBERNETES_PORT": "tcp://10.253.0.1:6443", "MODE": "e2e"} {
		if got, ok := vars[name]; !ok || got != want {
			t.Errorf("own-dns: backend env %s = %q (set %v), want %q", name, got, ok, want)
		}
	}
	for name := range vars {
		if strings.HasSuffix(name, "_SERVICE_HOST") && name != "KUBERNETES_SERVICE_HOST" {
			t.Errorf("own-dns: backend env has the service variable %s without the proxy", name)
		}
	}

	b = backends[def.Name]
	if b.Spec.DNSPolicy != corev1.DNSDefault || b.Spec.DNSConfig != nil {
		t.Errorf("default-dns: backend dnsPolicy %q dnsConfig %+v, want Default untouched", b.Spec.DNSPolicy, b.Spec.DNSConfig)
	}

	b = backends[many.Name]
	checkDNSConfig(t, b.Spec.DNSConfig, []string{"10.96.0.10"},
		[]string{ns + ".svc.cluster.local", "svc.cluster.local", "cluster.local", "s1.example", "s2.example", "s3.example"},
		[]corev1.PodDNSConfigOption{{Name: "ndots", Value: strp("5")}})
	eventually(t, 30*time.Second, "Warning DNSConfigForming on many-searches", func() error {
		var seen []string
		for _, e := range eventsFor(t, ns, many.Name) {
			if e.Type == corev1.EventTypeWarning && e.Reason == "DNSConfigForming" {
				if strings.Contains(e.Message, "s3.example") && !strings.Contains(e.Message, "s4.example") {
					return nil
				}
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return fmt.Errorf("events %q", seen)
	})
}

// --- cluster objects ---

// applyNetproxyRBAC applies deploy/rbac/netproxy.yaml to the cluster plane (kept: other tests may
// use it too).
func applyNetproxyRBAC(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	objs, err := testbed.DecodeManifests(filepath.Join("..", "..", "deploy", "rbac", "netproxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = env.cluster.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = env.cluster.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = env.cluster.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("netproxy.yaml: unexpected %T", obj)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("apply netproxy.yaml: %v", err)
		}
	}
}

func createService(t *testing.T, ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
	got, err := env.cluster.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return got
}

func endpoint(ip string, ready, terminating bool) discoveryv1.Endpoint {
	serving := ready || terminating
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{
		Ready: &ready, Serving: &serving, Terminating: &terminating}}
}

// putEndpointSlice creates or replaces the EndpointSlice `name` of Service `service`.
func putEndpointSlice(t *testing.T, ns, name, service string, ports []discoveryv1.EndpointPort,
	endpoints ...discoveryv1.Endpoint) {
	t.Helper()
	ctx := context.Background()
	slices := env.cluster.DiscoveryV1().EndpointSlices(ns)
	want := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: endpoints}
	if want.Endpoints == nil {
		want.Endpoints = []discoveryv1.Endpoint{}
	}
	cur, err := slices.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		want.ResourceVersion = cur.ResourceVersion
		_, err = slices.Update(ctx, want, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("EndpointSlice %s: %v", name, err)
	}
}

func strp(s string) *string                     { return &s }
func protop(p corev1.Protocol) *corev1.Protocol { return &p }

func keysOf(m map[string][]byte) (keys []string) {
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func containsCap(caps []corev1.Capability, want corev1.Capability) bool {
	for _, c := range caps {
		if c == want {
			return true
		}
	}
	return false
}

// appEnv is the app container's environment on the backend: plain values (burstlet resolves
// references in the cluster).
func appEnv(t *testing.T, b *corev1.Pod) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, c := range b.Spec.Containers {
		if c.Name != "app" {
			continue
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				t.Errorf("backend app env %s is a reference %+v, want a value", e.Name, e.ValueFrom)
			}
			vars[e.Name] = e.Value
		}
		if len(c.EnvFrom) > 0 {
			t.Errorf("backend app envFrom %+v, want values", c.EnvFrom)
		}
		return vars
	}
	t.Fatalf("backend pod %s has no app container", b.Name)
	return nil
}

func checkDNSConfig(t *testing.T, got *corev1.PodDNSConfig, nameservers, searches []string,
	options []corev1.PodDNSConfigOption) {
	t.Helper()
	if got == nil {
		t.Errorf("backend pod has no dnsConfig, want nameservers %v searches %v", nameservers, searches)
		return
	}
	if fmt.Sprint(got.Nameservers) != fmt.Sprint(nameservers) {
		t.Errorf("backend dnsConfig nameservers %v, want %v", got.Nameservers, nameservers)
	}
	if fmt.Sprint(got.Searches) != fmt.Sprint(searches) {
		t.Errorf("backend dnsConfig searches %v, want %v", got.Searches, searches)
	}
	show := func(opts []corev1.PodDNSConfigOption) string {
		var parts []string
		for _, o := range opts {
			if o.Value != nil {
				parts = append(parts, o.Name+":"+*o.Value)
			} else {
				parts = append(parts, o.Name)
			}
		}
		return strings.Join(parts, " ")
	}
	if show(got.Options) != show(options) {
		t.Errorf("backend dnsConfig options %q, want %q", show(got.Options), show(options))
	}
}
