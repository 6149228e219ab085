package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"burstlet/bench/internal/podload"
	"burstlet/bench/internal/proc"
	"burstlet/bench/internal/report"
)

// hooks are what one configuration adds around its measured window.
type hooks struct {
	served *proc.Process // the webhook's process (nil: none)
	proc   *process      // its record, filled with CPU and memory
	before func()        // right before the window
	after  func()        // right after it
}

// measure runs the warm-up, then the measured window, reading CPU time around the window and the
// API server's view of the webhook (if any) before and after it.
func (b *bench) measure(ctx context.Context, config, webhook string, h hooks) (*result, error) {
	o := b.o
	res := &result{Config: config, Webhook: webhook, Process: h.proc}
	if err := waitQuiet(ctx, o.quietWait); err != nil {
		return nil, err
	}
	fmt.Printf("%s: warm-up, %s at %.0f/s\n", config, o.warmup, o.rate)
	b.openLoop(ctx, o.rate, o.warmup, config+"-warmup")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	before := b.scrapeAPIServer(ctx)
	observe := func(name string) *proc.Process {
		if pid := b.tb.Cluster.Pid(name); pid != 0 {
			return proc.Observe(pid)
		}
		return nil
	}
	if h.before != nil {
		h.before()
	}
	res.LoadAvg[0] = loadavg()
	m := meter(observe("kube-apiserver"), observe("etcd"), proc.Observe(os.Getpid()), h.served)
	busy0 := machineBusy()
	fmt.Printf("%s: measuring, %s at %.0f/s\n", config, o.duration, o.rate)
	samples := b.openLoop(ctx, o.rate, o.duration, config)
	cpu, wall := m.stop()
	busy := machineBusy() - busy0
	res.LoadAvg[1] = loadavg()
	if h.after != nil {
		h.after()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	summarize(res, samples, o.rate, config == "burstlet")
	res.APIServerCores, res.EtcdCores, res.DriverCores = cores(cpu[0], wall), cores(cpu[1], wall), cores(cpu[2], wall)
	// Everything else the machine did: the rest of the testbed (idle) and whatever else runs here.
	other := busy
	for _, c := range cpu {
		if c != nil {
			other -= *c
		}
	}
	res.OtherCores = cores(ptr(max(0, other)), wall)
	if p := h.proc; p != nil && h.served != nil {
		p.CPUS, p.Cores = cpu[3], cores(cpu[3], wall)
		if cpu[3] != nil && res.Requests > 0 {
			p.CPUPerReqMs = ptr(podload.Round(*cpu[3]*1000/float64(res.Requests), 3))
		}
		if v, err := h.served.PeakRSSMB(); err == nil {
			p.PeakRSSMB = ptr(podload.Round(v, 1))
		}
		if v, err := rssMB(h.served.Pid); err == nil {
			p.RSSMB = ptr(podload.Round(v, 1))
		}
	}
	after := b.scrapeAPIServer(ctx)
	if before != nil && after != nil {
		res.OwnerReads = ptr(after.ownerReads - before.ownerReads)
		if webhook != "" {
			res.APIServer = before.hooks[webhook].until(after.hooks[webhook], webhook)
		}
	}
	return res, nil
}

// runNone measures the API server alone: no MutatingWebhookConfiguration at all.
func (b *bench) runNone(ctx context.Context) (*result, error) {
	list, err := b.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	if len(list.Items) > 0 {
		names := []string{}
		for _, c := range list.Items {
			names = append(names, c.Name)
		}
		return nil, fmt.Errorf("mutating webhooks registered, want none: %s", strings.Join(names, ", "))
	}
	return b.measure(ctx, "none", "", hooks{})
}

// runPeer measures the peer webhook (bench/admission/peer), registered by the driver as burstlet
// registers its own: same rules for pods, failurePolicy Ignore, timeout 5 s, sideEffects None.
func (b *bench) runPeer(ctx context.Context) (*result, error) {
	caPEM, certFile, keyFile, err := selfSigned(b.logDir, "peer")
	if err != nil {
		return nil, err
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	sp, err := proc.Start(b.o.peerBin, []string{"-listen", addr, "-cert", certFile, "-key", keyFile}, nil,
		filepath.Join(b.logDir, "peer.log"))
	if err != nil {
		return nil, err
	}
	defer sp.Stop()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	reviews := func() (float64, error) {
		resp, err := client.Get("https://" + addr + "/reviews")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strconv.ParseFloat(strings.TrimSpace(string(body)), 64)
	}
	if err := proc.WaitUntil(ctx, sp, 30*time.Second, "peer /reviews", func() error {
		_, err := reviews()
		return err
	}); err != nil {
		return nil, err
	}
	// reached says whether a probe went through the peer.
	reached := func() (bool, error) {
		r0, err := reviews()
		if err != nil {
			return false, err
		}
		if _, err := b.probe(ctx); err != nil {
			return false, err
		}
		r1, err := reviews()
		return r1 > r0, err
	}
	hook := admissionregistrationv1.MutatingWebhook{
		Name:                    peerWebhook,
		ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr("https://" + addr + "/mutate"), CABundle: caPEM},
		Rules:                   []admissionregistrationv1.RuleWithOperations{podCreate()},
		FailurePolicy:           ptr(admissionregistrationv1.Ignore),
		SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          ptr(int32(5)),
		AdmissionReviewVersions: []string{"v1"},
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}}}},
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: peerConfig},
		Webhooks: []admissionregistrationv1.MutatingWebhook{hook}}
	if _, err := b.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg,
		metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	defer b.unregister(ctx, peerConfig, reached)
	if err := proc.WaitUntil(ctx, sp, time.Minute, "the peer's registration effective", func() error {
		ok, err := reached()
		if err == nil && !ok {
			err = fmt.Errorf("a probe did not reach the peer")
		}
		return err
	}); err != nil {
		return nil, err
	}
	pr := &process{Name: "peer", Settings: "`bin/admission-peer` (bench/admission/peer: Go " + runtimeVersion() +
		" net/http + crypto/tls, ECDSA P-256 self-signed certificate, GOMAXPROCS default): decodes the " +
		"AdmissionReview, answers allowed with an empty JSON patch"}
	var r0 float64
	res, err := b.measure(ctx, "peer", peerWebhook, hooks{served: sp, proc: pr,
		before: func() { r0, _ = reviews() },
		after: func() {
			if r1, err := reviews(); err == nil {
				pr.Reviews = ptr(r1 - r0)
			}
		}})
	if err != nil {
		return nil, err
	}
	if sp.Exited() {
		return nil, fmt.Errorf("the peer exited during the run: %v\n%s", sp.Err(), proc.Tail(sp.Log))
	}
	return res, nil
}

// runBurstlet measures burstlet's webhook: `burstlet run` with the fake provider and its
// admission section on (a self-signed certificate for 127.0.0.1, as the e2e tests run it); it
// registers itself.
func (b *bench) runBurstlet(ctx context.Context) (*result, error) {
	listen, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	health, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(b.logDir, "burstlet.yaml")
	cfgText := fmt.Sprintf("admission:\n  listen: %s\n  hosts: [127.0.0.1]\n", listen)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		return nil, err
	}
	kubeletAPI, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--config", cfgPath, "--kubeconfig", b.tb.Cluster.BurstletKubeconfig,
		"--node-name", nodeName, "--node-ip", "127.0.0.1", "--health-listen", health,
		"--kubelet-listen", kubeletAPI}
	sp, err := proc.Start(b.o.burstletBin, args, nil, filepath.Join(b.logDir, "burstlet.log"))
	if err != nil {
		return nil, err
	}
	defer sp.Stop()
	defer func() { _ = b.cs.CoreV1().Nodes().Delete(context.Background(), nodeName, metav1.DeleteOptions{}) }()
	client := &http.Client{Timeout: 2 * time.Second}
	if err := proc.WaitUntil(ctx, sp, 2*time.Minute, "burstlet /readyz", func() error {
		resp, err := client.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return podload.NodeReady(ctx, b.cs, nodeName)
	}); err != nil {
		return nil, err
	}
	registration := "burstlet-" + nodeName
	reached := func() (bool, error) { return b.probe(ctx) }
	defer b.unregister(ctx, registration, reached)
	if err := proc.WaitUntil(ctx, sp, time.Minute, "burstlet's annotation on a probe pod", func() error {
		ok, err := reached()
		if err == nil && !ok {
			err = fmt.Errorf("no %s annotation yet", ruleAnnotation)
		}
		return err
	}); err != nil {
		return nil, err
	}
	if _, err := b.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, peerConfig,
		metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("the peer's registration is still there (%v)", err)
	}
	pr := &process{Name: "burstlet", Settings: "`burstlet run --config <admission: {listen: 127.0.0.1:<port>, " +
		"hosts: [127.0.0.1]}> --kubeconfig <burstlet.kubeconfig> --node-name " + nodeName +
		" --node-ip 127.0.0.1 --health-listen 127.0.0.1:<port>`: fake provider, a self-signed serving certificate " +
		"made at start, its own registration `" + registration + "`; burstlet's ServiceAccount identity (deploy/rbac)"}
	res, err := b.measure(ctx, "burstlet", burstletWebhook, hooks{served: sp, proc: pr})
	if err != nil {
		return nil, err
	}
	if sp.Exited() {
		return nil, fmt.Errorf("burstlet exited during the run: %v\n%s", sp.Err(), proc.Tail(sp.Log))
	}
	// What the process logs once told to stop is not load.
	logged := proc.LogSize(sp.Log)
	b.unregister(ctx, registration, reached)
	sp.Stop()
	pr.LogWarnings, pr.LogErrors, pr.LogSamples = proc.LogProblems(sp.Log, logged)
	return res, nil
}

// unregister deletes a MutatingWebhookConfiguration and waits (at most 30 s) until the API
// server stops calling the webhook: a probe that does not reach it. The webhook must still be
// serving, or the probe could not tell.
func (b *bench) unregister(ctx context.Context, name string, reached func() (bool, error)) {
	err := b.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name,
		metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) || ctx.Err() != nil {
		return
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		if ok, err := reached(); err == nil && !ok {
			return
		}
	}
	fmt.Printf("  warning: %s still answers 30 s after its registration was deleted\n", name)
}

func podCreate() admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
			Resources: []string{"pods"}},
	}
}

// histogram is the API server's apiserver_admission_webhook_admission_duration_seconds of one
// webhook (all operations and outcomes summed) and its fail-open count, at one moment.
type histogram struct {
	buckets          map[float64]float64 // le → cumulative count
	sum, count, open float64
}

// apiserverMetrics is what the driver reads from the API server's /metrics at one moment.
type apiserverMetrics struct {
	hooks map[string]*histogram // by webhook name
	// GETs of ReplicaSets and Deployments answered (apiserver_request_total): the webhook's
	// owner reads, whatever the webhook's own instrumentation counts.
	ownerReads float64
}

// scrapeAPIServer reads the API server's /metrics (nil when it cannot).
func (b *bench) scrapeAPIServer(ctx context.Context) *apiserverMetrics {
	data, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").SetHeader("Accept", "text/plain").DoRaw(ctx)
	if err != nil {
		fmt.Printf("  warning: API server /metrics: %v\n", err)
		return nil
	}
	const metric = "apiserver_admission_webhook_admission_duration_seconds"
	m := &apiserverMetrics{hooks: map[string]*histogram{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		if strings.HasPrefix(line, "apiserver_request_total{") && report.LabelValue(line, "verb") == "GET" {
			if r := report.LabelValue(line, "resource"); r == "replicasets" || r == "deployments" {
				m.ownerReads += v
			}
			continue
		}
		name := report.LabelValue(line, "name")
		if name == "" || !strings.HasPrefix(line, "apiserver_admission_webhook_") {
			continue
		}
		h := m.hooks[name]
		if h == nil {
			h = &histogram{buckets: map[float64]float64{}}
			m.hooks[name] = h
		}
		switch {
		case strings.HasPrefix(line, metric+"_bucket{"):
			le, err := strconv.ParseFloat(report.LabelValue(line, "le"), 64) // "+Inf" parses as +Inf
			if err == nil {
				h.buckets[le] += v
			}
		case strings.HasPrefix(line, metric+"_sum{"):
			h.sum += v
		case strings.HasPrefix(line, metric+"_count{"):
			h.count += v
		case strings.HasPrefix(line, "apiserver_admission_webhook_fail_open_count{"):
			h.open += v
		}
	}
	return m
}

// until is the webhook's view over the window from h to after (a webhook not called yet has
// no series: zero).
func (h *histogram) until(after *histogram, name string) *webhookView {
	if h == nil {
		h = &histogram{buckets: map[float64]float64{}}
	}
	if after == nil {
		after = &histogram{buckets: map[float64]float64{}}
	}
	v := &webhookView{Name: name, Calls: after.count - h.count, FailOpen: after.open - h.open,
		Buckets: map[string]float64{}}
	les := make([]float64, 0, len(after.buckets))
	for le := range after.buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	for _, le := range les {
		n := after.buckets[le] - h.buckets[le]
		v.Buckets[strconv.FormatFloat(le, 'g', -1, 64)] = n
		if v.P99BoundMs == nil && v.Calls > 0 && n >= 0.99*v.Calls && !math.IsInf(le, 1) {
			v.P99BoundMs = ptr(le * 1000)
		}
	}
	if v.Calls > 0 {
		v.MeanMs = ptr(podload.Round((after.sum-h.sum)/v.Calls*1000, 3))
	}
	return v
}

// machineBusy is the CPU seconds all CPUs have spent not idle since boot (/proc/stat).
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0]) // cpu user nice system idle iowait irq softirq steal
	busy := 0.0
	for i, s := range f[1:min(len(f), 9)] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, _ := strconv.ParseFloat(s, 64)
		busy += v
	}
	return busy / 100 // USER_HZ
}

// waitQuiet waits (at most max) until the machine is quiet: under half a core busy over 2 s
// beyond the idle testbed, so that another job on this machine (a build) does not start inside
// a measurement. It gives up with a warning, not an error: the run records the load it had.
func waitQuiet(ctx context.Context, max time.Duration) error {
	deadline := time.Now().Add(max)
	for said := false; ; said = true {
		b0, t0 := machineBusy(), time.Now()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
		busy := (machineBusy() - b0) / time.Since(t0).Seconds()
		if busy < 0.5 {
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Printf("  warning: the machine is still busy (%.2f cores) after %s; measuring anyway\n", busy, max)
			return nil
		}
		if !said {
			fmt.Printf("  the machine is busy (%.2f cores): waiting up to %s for it to be quiet\n", busy, max)
		}
	}
}

// selfSigned writes a self-signed ECDSA P-256 certificate for 127.0.0.1, its own trust anchor
// (as burstlet's generated one is), and its key; it returns the certificate's PEM.
func selfSigned(dir, name string) ([]byte, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "bench-admission-" + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", "", err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return nil, "", "", err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, "", "", err
	}
	return certPEM, certFile, keyFile, nil
}

// rssMB reads VmRSS, the resident set now.
func rssMB(pid int) (float64, error) { return proc.StatusMB(pid, "VmRSS") }

// buildInfo names the burstlet binary measured: its modification time and the repository's
// commit, flagging uncommitted changes under src/ (the binary may or may not include them).
func buildInfo(root, bin string) string {
	s := bin
	if rel, err := filepath.Rel(root, bin); err == nil {
		s = rel
	}
	if st, err := os.Stat(bin); err == nil {
		s += ", built " + st.ModTime().UTC().Format(time.RFC3339)
	}
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		s += "; repository at " + strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", "src").Output(); err == nil &&
			len(bytes.TrimSpace(st)) > 0 {
			s += " with uncommitted changes under src/"
		}
	}
	return s
}
