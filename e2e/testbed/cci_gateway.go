package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
)

// CCIGatewayConfig is what `testbed cci-gateway` runs with.
type CCIGatewayConfig struct {
	// Admin reaches the backend plane as system:masters (the gateway's own operations: namespace
	// owners, file system records, imported claims and their PVs).
	Admin *rest.Config
	// Burstlet is burstlet's identity on the backend plane (a ServiceAccount token): every
	// authenticated request is forwarded with it, so deploy/rbac/backend.yaml applies.
	Burstlet *rest.Config
	// Listen is host:port; CertFile and KeyFile its serving certificate.
	Listen, CertFile, KeyFile string
	Accounts                  []CCIAccount
	// NamespacePending is how long a namespace created through the gateway reads as Pending.
	NamespacePending time.Duration
}

// CCIAccountAnnotation names the account that created a namespace through the gateway; another
// account's requests into that namespace are refused (403). Namespaces without it are anyone's.
const CCIAccountAnnotation = "testbed.burstlet.io/cci-account"

// cciVersion is what the gateway answers on /version: CCI's API is Kubernetes 1.19 (the commit
// and build date are not CCI's, which are not published).
var cciVersion = version.Info{Major: "1", Minor: "19", GitVersion: "v1.19.16-cci", GitTreeState: "clean",
	GoVersion: "go1.15.15", Compiler: "gc", Platform: "linux/amd64"}

// scopeFunc says whether a resource of a group version is namespaced; known is false for a
// resource the API server does not serve.
type scopeFunc func(group, version, resource string) (namespaced, known bool)

// cciGateway is the CCI stand-in's front door (cci_*.go): authentication, CCI's answers, and the
// reverse proxy to the backend plane's API server.
type cciGateway struct {
	accounts []CCIAccount
	pending  time.Duration
	admin    kubernetes.Interface
	upstream *url.URL
	token    string
	// client makes the gateway's own calls upstream (burstlet's identity); proxy forwards.
	client *http.Client
	proxy  *httputil.ReverseProxy
	scopes scopeFunc
	// nsLister, when set, answers namespace owners without a request (a miss asks the server).
	nsLister corelisters.NamespaceLister
	info     *request.RequestInfoFactory
	now      func() time.Time
	logf     func(format string, args ...any)

	mu      sync.Mutex
	created map[types.UID]time.Time // namespaces this gateway created, when
	nsMu    sync.Mutex              // one namespace create at a time (quota)
	storeMu sync.Mutex              // one file system operation at a time
}

func newCCIGateway(upstream *url.URL, transport http.RoundTripper, token string, admin kubernetes.Interface,
	accounts []CCIAccount, pending time.Duration) *cciGateway {
	g := &cciGateway{accounts: accounts, pending: pending, admin: admin, upstream: upstream, token: token,
		client: &http.Client{Transport: transport},
		scopes: func(string, string, string) (bool, bool) { return false, false },
		info: &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"),
			GrouplessAPIPrefixes: sets.NewString("api")},
		now: time.Now, logf: log.Printf, created: map[types.UID]time.Time{}}
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			g.asBurstlet(pr.Out.Header)
			if watchFilterOf(pr.In.Context()) != nil {
				pr.Out.Header.Set("Accept", "application/json")
				pr.Out.Header.Del("Accept-Encoding")
			}
		},
		Transport:      transport,
		FlushInterval:  -1,
		ModifyResponse: g.modifyResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.logf("upstream error for %s %s: %v", r.Method, r.URL.Path, err)
			writeCCIError(w, &apiError{Code: http.StatusServiceUnavailable, Reason: metav1.StatusReasonServiceUnavailable,
				Message: "the API server behind the gateway did not answer"})
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return g
}

// asBurstlet replaces the caller's credentials with burstlet's identity on the backend plane.
func (g *cciGateway) asBurstlet(h http.Header) {
	for _, k := range []string{"Authorization", authTokenHeader, sdkDateHeader, sdkContentSHA256, "X-Project-Id"} {
		h.Del(k)
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "impersonate-") {
			h.Del(k)
		}
	}
	h.Set("Authorization", "Bearer "+g.token)
}

// requestLog is the one line logged per request.
type requestLog struct {
	account, method, uri, pod, note string
}

func (g *cciGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	entry := &requestLog{account: "-", method: r.Method, uri: r.URL.RequestURI()}
	start := time.Now()
	defer func() {
		line := fmt.Sprintf("account=%s method=%s path=%s status=%d duration=%s", entry.account, entry.method,
			entry.uri, rec.code(), time.Since(start).Round(time.Millisecond))
		if entry.pod != "" {
			line += " pod=" + entry.pod
		}
		if entry.note != "" {
			line += fmt.Sprintf(" note=%q", entry.note)
		}
		g.logf("%s", line)
	}()
	acct, fail := authenticate(r, g.accounts, g.now())
	if fail != nil {
		entry.note = fail.message
		writeAPIGError(rec, fail.code, apigAuthFailed, fail.message)
		return
	}
	entry.account = acct.Name
	g.route(rec, r, acct, entry)
}

func (g *cciGateway) route(w http.ResponseWriter, r *http.Request, acct *CCIAccount, entry *requestLog) {
	if r.URL.Path == "/version" || r.URL.Path == "/version/" {
		writeJSON(w, http.StatusOK, cciVersion)
		return
	}
	info, err := g.info.NewRequestInfo(r)
	if err != nil {
		writeCCIError(w, notFound())
		return
	}
	if e := refusal(r, info, g.scopes); e != nil {
		entry.note = e.Message
		writeCCIError(w, e)
		return
	}
	if info.IsResourceRequest && info.Namespace != "" {
		if e := g.checkNamespaceAccess(r.Context(), acct, info.Namespace); e != nil {
			entry.note = e.Message
			writeCCIError(w, e)
			return
		}
	}
	core := info.IsResourceRequest && info.APIPrefix == "api" && info.APIVersion == "v1"
	switch {
	case core && info.Resource == "namespaces" && info.Subresource == "":
		g.namespaces(w, r, info, acct)
	case core && info.Resource == "extended-persistentvolumeclaims":
		g.extendedClaims(w, r, info, entry)
	case core && info.Resource == "persistentvolumeclaims" && info.Verb == "delete" && info.Subresource == "" &&
		(r.URL.Query().Has("deleteVolume") || r.URL.Query().Has("storageType")):
		g.deleteClaim(w, r, info, entry)
	case core && info.Resource == "pods" && (info.Subresource == "" || info.Subresource == "ephemeralcontainers") &&
		(info.Verb == "create" || info.Verb == "update" || info.Verb == "patch"):
		g.podFor119(w, r, info, entry)
	default:
		g.proxy.ServeHTTP(w, r)
	}
}

// refusal is CCI's answer to a request its path or query alone rules out, or nil:
//   - sendInitialEvents (any request) and resourceVersionMatch on a watch: 400 (not in 1.19 /
//     refused for watches);
//   - PersistentVolumes: 404, CCI has no such API;
//   - a list or watch of a namespaced resource across all namespaces: 400 CCI.01.400102.
func refusal(r *http.Request, info *request.RequestInfo, scopes scopeFunc) *apiError {
	q := r.URL.Query()
	if q.Has("sendInitialEvents") {
		return cciBadRequest(cciBodyError,
			"sendInitialEvents: query parameter not supported (CCI serves the Kubernetes 1.19 API)")
	}
	if info.Verb == "watch" && q.Has("resourceVersionMatch") {
		return cciBadRequest(cciBodyError, "resourceVersionMatch: query parameter not supported for watch")
	}
	if !info.IsResourceRequest {
		return nil
	}
	if info.APIGroup == "" && info.Resource == "persistentvolumes" {
		return notFound()
	}
	if (info.Verb == "list" || info.Verb == "watch") && info.Namespace == "" && info.Resource != "namespaces" {
		if namespaced, known := scopes(info.APIGroup, info.APIVersion, info.Resource); known && namespaced {
			return cciBadRequest(cciNamespaceRequired, "provide namespace requested")
		}
	}
	return nil
}

// discoveryScopes answers scopeFunc from the API server's discovery, cached per group version
// (a resource not found is looked up again at most every 5 s: CRDs come and go).
func discoveryScopes(d discovery.DiscoveryInterface) scopeFunc {
	var mu sync.Mutex
	cached := map[string]map[string]bool{}
	fetched := map[string]time.Time{}
	return func(group, ver, resource string) (bool, bool) {
		gv := schema.GroupVersion{Group: group, Version: ver}.String()
		mu.Lock()
		defer mu.Unlock()
		if namespaced, ok := cached[gv][resource]; ok {
			return namespaced, true
		}
		if time.Since(fetched[gv]) < 5*time.Second {
			return false, false
		}
		fetched[gv] = time.Now()
		list, err := d.ServerResourcesForGroupVersion(gv)
		if err != nil {
			return false, false
		}
		m := map[string]bool{}
		for _, res := range list.APIResources {
			m[res.Name] = res.Namespaced
		}
		cached[gv] = m
		namespaced, ok := m[resource]
		return namespaced, ok
	}
}

// modifyResponse makes the API server's answers CCI's: a 422 becomes 400 CCI.01.400101; a
// namespace watch loses the events of other accounts' namespaces.
func (g *cciGateway) modifyResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusUnprocessableEntity {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		data := cciErrorBody(cciFromUpstream(resp.StatusCode, resp.Header, body))
		resp.StatusCode, resp.Status = http.StatusBadRequest, "400 Bad Request"
		resp.Body = io.NopCloser(bytes.NewReader(data))
		resp.ContentLength = int64(len(data))
		resp.Header.Set("Content-Type", "application/json")
		resp.Header.Set("Content-Length", fmt.Sprint(len(data)))
		resp.Header.Del("Content-Encoding")
		return nil
	}
	if keep := watchFilterOf(resp.Request.Context()); keep != nil && resp.StatusCode == http.StatusOK {
		resp.Body = filterLines(resp.Body, keep)
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
	return nil
}

type watchFilterKey struct{}

func watchFilterOf(ctx context.Context) func([]byte) bool {
	keep, _ := ctx.Value(watchFilterKey{}).(func([]byte) bool)
	return keep
}

// filterLines passes on the lines of a JSON watch stream (one event a line) that keep accepts.
func filterLines(body io.ReadCloser, keep func([]byte) bool) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		defer body.Close()
		br := bufio.NewReaderSize(body, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && keep(line) {
				if _, werr := pw.Write(line); werr != nil {
					return
				}
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// upstreamReply is an answer of the API server to a call the gateway made itself.
type upstreamReply struct {
	code   int
	header http.Header
	body   []byte
}

// call sends r's method, path and query with body upstream as burstlet, JSON in and out.
func (g *cciGateway) call(r *http.Request, body []byte) (*upstreamReply, error) {
	u := *g.upstream
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		out.Header.Set("Content-Type", ct)
	}
	out.Header.Set("Accept", "application/json")
	g.asBurstlet(out.Header)
	resp, err := g.client.Do(out)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &upstreamReply{code: resp.StatusCode, header: resp.Header, body: data}, nil
}

// writeReply writes an upstream answer as CCI would (a 422 is CCI's 400).
func writeReply(w http.ResponseWriter, reply *upstreamReply) {
	if e := cciFromUpstream(reply.code, reply.header, reply.body); e != nil {
		writeCCIError(w, e)
		return
	}
	ct := reply.header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	writeBody(w, reply.code, ct, reply.body)
}

// writeKubeError writes an error of a client-go call the gateway made as the API server's
// Status (a 422 as CCI's 400).
func writeKubeError(w http.ResponseWriter, err error, code422 string) {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		if s.Code == http.StatusUnprocessableEntity {
			writeCCIError(w, cciBadRequest(code422, s.Message))
			return
		}
		s.Kind, s.APIVersion = "Status", "v1"
		writeJSON(w, int(s.Code), s)
		return
	}
	writeCCIError(w, &apiError{Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
		Message: err.Error()})
}

// podFor119 drops the pod fields Kubernetes 1.19 lacks from a pod create, update or patch (and
// the ephemeralcontainers subresource), logs each, and forwards the request.
func (g *cciGateway) podFor119(w http.ResponseWriter, r *http.Request, info *request.RequestInfo, entry *requestLog) {
	body, err := readBody(r, maxSignedBody)
	if err != nil {
		writeCCIError(w, &apiError{Code: http.StatusRequestEntityTooLarge, Reason: metav1.StatusReasonRequestEntityTooLarge,
			Message: err.Error()})
		return
	}
	name := info.Name
	if info.Verb == "create" {
		var meta struct {
			Metadata struct {
				Name         string `json:"name"`
				GenerateName string `json:"generateName"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(body, &meta)
		name = meta.Metadata.Name
		if name == "" && meta.Metadata.GenerateName != "" {
			name = meta.Metadata.GenerateName + "*"
		}
		entry.pod = name
	}
	newBody, dropped := podBodyFor119(r.Header.Get("Content-Type"), body)
	for _, d := range dropped {
		g.logf("pod %s/%s: dropped %s, unknown to Kubernetes 1.19", info.Namespace, name, d)
	}
	setBody(r, newBody)
	g.proxy.ServeHTTP(w, r)
}

// statusRecorder remembers the status written, for the request's log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is an upgrade (exec, attach, port-forward) switching protocols.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over (HTTP/2)")
	}
	s.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
