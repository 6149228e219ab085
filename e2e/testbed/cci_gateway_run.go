package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// startCCIGateway starts the CCI gateway of a backend plane in CCI mode (after its policies are
// in force): account files with fresh keys, a serving certificate from the plane's CA, the
// process, and it returns once the gateway answers an authenticated request through to the API
// server. p.CCIGateway records it.
func (s *planeStarter) startCCIGateway(ctx context.Context) error {
	p := s.plane
	if p.BurstletKubeconfig == "" {
		return errors.New("the CCI gateway forwards as burstlet: the plane needs burstlet's identity (BackendRBAC)")
	}
	accounts := s.spec.CCI.Accounts
	if len(accounts) == 0 {
		accounts = DefaultCCIAccounts()
	}
	dir := filepath.Join(p.Dir, CCIGatewayName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	gw := &CCIGateway{URL: fmt.Sprintf("https://127.0.0.1:%d", port), CAFile: p.CAFile, Dir: dir,
		Log: filepath.Join(p.Dir, CCIGatewayName+".log")}
	cert, err := s.ca.issueTo(filepath.Join(p.Dir, "pki"), CCIGatewayName, certSpec{commonName: CCIGatewayName,
		server: true, dnsNames: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}})
	if err != nil {
		return err
	}
	args := []string{CCIGatewayName, "--kubeconfig=" + p.AdminKubeconfig, "--burstlet-kubeconfig=" + p.BurstletKubeconfig,
		fmt.Sprintf("--listen=127.0.0.1:%d", port), "--tls-cert-file=" + cert.CertPath,
		"--tls-private-key-file=" + cert.KeyPath, "--accounts-dir=" + dir,
		"--namespace-pending=" + s.spec.CCI.NamespacePending.String()}
	withKeysAll := make([]CCIAccount, 0, len(accounts))
	for _, a := range accounts {
		if a, err = withKeys(a); err != nil {
			return err
		}
		withKeysAll = append(withKeysAll, a)
		if err := writeAccountFiles(dir, a); err != nil {
			return err
		}
		gw.Accounts = append(gw.Accounts, CCIGatewayAccount{Name: a.Name, NamespaceQuota: a.NamespaceQuota,
			AKSKFile: akskPath(dir, a.Name), TokenFile: tokenPath(dir, a.Name)})
		args = append(args, "--account="+a.String())
	}
	if err := checkAccounts(withKeysAll); err != nil {
		return err
	}
	proc, err := s.start(ctx, CCIGatewayName, filepath.Join(s.binDir, "testbed"), args)
	if err != nil {
		return err
	}
	p.CCIGateway = gw
	client, err := gw.HTTPClient()
	if err != nil {
		return err
	}
	client.Timeout = 5 * time.Second
	token := withKeysAll[0].Token
	return waitFor(ctx, proc, "CCI gateway answers", func(ctx context.Context) error {
		for _, path := range []string{"/version", "/api/v1/namespaces?limit=1"} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+path, nil)
			if err != nil {
				return err
			}
			req.Header.Set(authTokenHeader, token)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
			}
		}
		return nil
	})
}

// RunCCIGateway serves the CCI gateway until ctx ends (`testbed cci-gateway`).
func RunCCIGateway(ctx context.Context, cfg CCIGatewayConfig) error {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if err := checkAccounts(cfg.Accounts); err != nil {
		return err
	}
	upstream, err := url.Parse(cfg.Burstlet.Host)
	if err != nil {
		return err
	}
	tlsConfig, err := rest.TLSConfigFor(cfg.Burstlet)
	if err != nil {
		return err
	}
	token := cfg.Burstlet.BearerToken
	if token == "" && cfg.Burstlet.BearerTokenFile != "" {
		data, err := os.ReadFile(cfg.Burstlet.BearerTokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" {
		return errors.New("burstlet's kubeconfig has no bearer token")
	}
	transport := &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 100,
		IdleConnTimeout: 90 * time.Second, Proxy: nil}
	admin := rest.CopyConfig(cfg.Admin)
	admin.QPS, admin.Burst = -1, -1
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	g := newCCIGateway(upstream, transport, token, cs, cfg.Accounts, cfg.NamespacePending)
	g.scopes = discoveryScopes(cs.Discovery())
	if err := ensureStorageNamespace(ctx, cs); err != nil {
		return fmt.Errorf("file system records: %w", err)
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	nsInformer := factory.Core().V1().Namespaces()
	g.nsLister = nsInformer.Lister() // registers the informer before Start
	claims := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(
		func(o *metav1.ListOptions) { o.LabelSelector = CCIImportLabel + "=true" }))
	if err := g.watchImportedClaims(ctx, claims.Core().V1().PersistentVolumeClaims().Informer()); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	claims.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), nsInformer.Informer().HasSynced,
		claims.Core().V1().PersistentVolumeClaims().Informer().HasSynced) {
		return ctx.Err()
	}
	go g.reconcileFileSystems(ctx, 10*time.Second)

	srv := &http.Server{Addr: cfg.Listen, Handler: g, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS(cfg.CertFile, cfg.KeyFile) }()
	names := make([]string, len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		names[i] = a.String()
	}
	log.Printf("cci gateway: serving https://%s for %s (accounts %v, namespaces Pending for %v)",
		cfg.Listen, upstream.Host, names, cfg.NamespacePending)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			_ = srv.Close()
		}
		return nil
	}
}
