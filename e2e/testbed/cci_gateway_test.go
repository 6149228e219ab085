package testbed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer"
	sdkrequest "github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

var testAccounts = []CCIAccount{
	{Name: "e2e", AccessKey: "AKE2E0000000000000001", SecretKey: "sk-e2e-secret-0123456789", Token: "token-e2e", NamespaceQuota: -1},
	{Name: "full", AccessKey: "AKFULL000000000000001", SecretKey: "sk-full-secret-0123456789", Token: "token-full"},
}

// signLikeBurstlet signs r as burstlet's signer does (src/provider/cci/signer.cc): content-type,
// host, x-project-id and x-sdk-date, when present.
func signLikeBurstlet(r *http.Request, body []byte, ak, sk string, at time.Time) {
	date := at.UTC().Format(sdkDateFormat)
	r.Header.Set(sdkDateHeader, date)
	var names []string
	for _, n := range []string{"content-type", "host", "x-project-id", "x-sdk-date"} {
		if n == "host" || r.Header.Get(n) != "" {
			names = append(names, n)
		}
	}
	sig := sdkSignature(sk, date, canonicalRequest(r, names, sha256Hex(body)))
	r.Header.Set("Authorization", sdkSigningAlgorithm+" Access="+ak+", SignedHeaders="+strings.Join(names, ";")+
		", Signature="+sig)
}

// sdkSigned is a request signed by the official Huawei Cloud Go SDK's signer.
func sdkSigned(t *testing.T, method, path string, query map[string]string, headers map[string]string, body string,
	ak, sk string) *http.Request {
	t.Helper()
	b := sdkrequest.NewHttpRequestBuilder().WithEndpoint("https://127.0.0.1:8443").WithPath(path).WithMethod(method)
	for k, v := range query {
		b = b.AddQueryParam(k, reflect.ValueOf(v))
	}
	for k, v := range headers {
		b = b.AddHeaderParam(k, v)
	}
	if body != "" {
		b = b.WithBody("", body)
	}
	req := b.Build()
	extra, err := signer.Signer{}.Sign(req, ak, sk)
	if err != nil {
		t.Fatal(err)
	}
	r, err := req.ConvertRequest()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		r.Header.Set(k, v)
	}
	return r
}

func TestSignatureFromTheOfficialSDKVerifies(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		query, headers           map[string]string
	}{
		{name: "get with a query", method: "GET", path: "/api/v1/namespaces/ns-1/pods",
			query: map[string]string{"labelSelector": "app in (a,b)", "limit": "500", "watch": "true"}},
		{name: "post with a JSON body", method: "POST", path: "/api/v1/namespaces/ns-1/pods",
			headers: map[string]string{"Content-Type": "application/json;charset=UTF-8", "X-Project-Id": "p-1"},
			body:    `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a b"}}`},
		{name: "odd path characters", method: "DELETE", path: "/api/v1/namespaces/ns 1/configmaps/a:b",
			query: map[string]string{"propagationPolicy": "Background"}},
		{name: "unsigned payload", method: "PUT", path: "/apis/x/v1/namespaces/n/things/t",
			headers: map[string]string{"Content-Type": "application/octet-stream"}, body: "raw bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := sdkSigned(t, c.method, c.path, c.query, c.headers, c.body, testAccounts[0].AccessKey, testAccounts[0].SecretKey)
			acct, fail := authenticate(r, testAccounts, time.Now())
			if fail != nil {
				t.Fatalf("the SDK's signature is refused: %v", fail)
			}
			if acct.Name != "e2e" {
				t.Fatalf("account %s, want e2e", acct.Name)
			}
			// The body is still there for whoever forwards the request.
			if got, _ := io.ReadAll(r.Body); string(got) != c.body {
				t.Fatalf("body after verification %q, want %q", got, c.body)
			}
			// Another secret key does not verify.
			r = sdkSigned(t, c.method, c.path, c.query, c.headers, c.body, testAccounts[0].AccessKey, "wrong")
			if _, fail := authenticate(r, testAccounts, time.Now()); fail == nil {
				t.Fatal("a signature with the wrong secret key verifies")
			}
		})
	}
}

func TestSignatureChecks(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"kind":"Namespace"}`)
	newReq := func() *http.Request {
		r := httptest.NewRequest("POST", "https://127.0.0.1:9443/api/v1/namespaces?dryRun=All&fieldManager=a+b", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Project-Id", "project-1")
		return r
	}
	r := newReq()
	signLikeBurstlet(r, body, testAccounts[1].AccessKey, testAccounts[1].SecretKey, now)
	if acct, fail := authenticate(r, testAccounts, now.Add(14*time.Minute)); fail != nil || acct.Name != "full" {
		t.Fatalf("burstlet-style signature: %v %v", acct, fail)
	}
	for name, tamper := range map[string]func(*http.Request){
		"body changed":  func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"kind":"Pod"}`)) },
		"query changed": func(r *http.Request) { r.URL.RawQuery = "dryRun=All" },
		"path changed":  func(r *http.Request) { r.URL.Path = "/api/v1/namespaces/x" },
		"host changed":  func(r *http.Request) { r.Host = "127.0.0.1:1" },
		"unknown access key": func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testAccounts[1].AccessKey, "AKNOBODY", 1))
		},
		"signed header dropped": func(r *http.Request) { r.Header.Del("X-Project-Id") },
		"not SDK-HMAC-SHA256":   func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") },
	} {
		r := newReq()
		signLikeBurstlet(r, body, testAccounts[1].AccessKey, testAccounts[1].SecretKey, now)
		tamper(r)
		if _, fail := authenticate(r, testAccounts, now); fail == nil || fail.code != http.StatusUnauthorized {
			t.Errorf("%s: accepted (%v)", name, fail)
		}
	}
	for _, skew := range []time.Duration{16 * time.Minute, -16 * time.Minute} {
		r := newReq()
		signLikeBurstlet(r, body, testAccounts[1].AccessKey, testAccounts[1].SecretKey, now)
		if _, fail := authenticate(r, testAccounts, now.Add(skew)); fail == nil || !strings.Contains(fail.message, "15 minutes") {
			t.Errorf("a date %v off is accepted (%v)", skew, fail)
		}
	}
}

func TestTokenAuthentication(t *testing.T) {
	r := httptest.NewRequest("GET", "/version", nil)
	r.Header.Set(authTokenHeader, "token-full")
	if acct, fail := authenticate(r, testAccounts, time.Now()); fail != nil || acct.Name != "full" {
		t.Fatalf("token: %v %v", acct, fail)
	}
	r.Header.Set(authTokenHeader, "token-nobody")
	if _, fail := authenticate(r, testAccounts, time.Now()); fail == nil || !strings.Contains(fail.message, "decrypt token fail") {
		t.Fatalf("unknown token: %v", fail)
	}
	r.Header.Del(authTokenHeader)
	if _, fail := authenticate(r, testAccounts, time.Now()); fail == nil || fail.code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %v", fail)
	}
}

// testGateway is a gateway in front of upstream, with a fake admin clientset holding objects.
func testGateway(t *testing.T, upstream http.Handler, objects ...runtime.Object) (*cciGateway, *httptest.Server, *fake.Clientset) {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	cs := fake.NewClientset(objects...)
	g := newCCIGateway(u, http.DefaultTransport, "burstlet-token", cs, testAccounts, 2*time.Second)
	g.logf = t.Logf
	g.scopes = func(group, _, resource string) (bool, bool) {
		switch group + "/" + resource {
		case "/pods", "/configmaps", "/persistentvolumeclaims", "networking.cci.io/networks":
			return true, true
		case "/nodes", "/namespaces", "/persistentvolumes", "storage.k8s.io/storageclasses":
			return false, true
		}
		return false, false
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv, cs
}

// send makes a token-authenticated request as account; it returns the status and the body.
func send(t *testing.T, srv *httptest.Server, account, method, path, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if account != "" {
		for _, a := range testAccounts {
			if a.Name == account {
				req.Header.Set(authTokenHeader, a.Token)
			}
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// errorCodeOf is a CCI body's errorCode (or the API gateway's error_code).
func errorCodeOf(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		ErrorCode string `json:"errorCode"`
		APIG      string `json:"error_code"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	return e.ErrorCode + e.APIG
}

func TestGatewayForwardsAsBurstletAndAnswersLikeCCI(t *testing.T) {
	var seen http.Header
	_, srv, _ := testGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		if r.Method == "POST" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"ValidatingAdmissionPolicy 'cci-pod-resources' denied request","reason":"Invalid","code":422}`))
			return
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("as is"))
	}))
	code, body := send(t, srv, "e2e", "GET", "/api/v1/namespaces/a/configmaps", "", "")
	if code != http.StatusTeapot || string(body) != "as is" {
		t.Fatalf("other statuses pass unchanged: %d %s", code, body)
	}
	if seen.Get("Authorization") != "Bearer burstlet-token" || seen.Get(authTokenHeader) != "" {
		t.Fatalf("forwarded with %v", seen)
	}
	code, body = send(t, srv, "e2e", "POST", "/api/v1/namespaces/a/pods", "application/json", `{"metadata":{"name":"p"}}`)
	var status map[string]any
	_ = json.Unmarshal(body, &status)
	if code != http.StatusBadRequest || status["errorCode"] != "CCI.01.400101" || status["reason"] != "BadRequest" ||
		status["code"] != float64(400) || !strings.Contains(status["message"].(string), "cci-pod-resources") {
		t.Fatalf("422 is CCI's 400: %d %s", code, body)
	}
	code, body = send(t, srv, "e2e", "GET", "/version", "", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"minor":"19"`) || !strings.Contains(string(body), "v1.19.16") {
		t.Fatalf("/version: %d %s", code, body)
	}
}

func TestAuthFailuresAre401WithoutSecrets(t *testing.T) {
	_, srv, _ := testGateway(t, http.NotFoundHandler())
	bad := func(r *http.Request) { r.Header.Set(authTokenHeader, "token-e2e-but-wrong") }
	badSig := func(r *http.Request) {
		signLikeBurstlet(r, nil, testAccounts[0].AccessKey, "not-"+testAccounts[0].SecretKey, time.Now())
	}
	for name, prepare := range map[string]func(*http.Request){"none": func(*http.Request) {}, "bad token": bad,
		"bad signature": badSig} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/namespaces", nil)
		prepare(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || errorCodeOf(t, body) != apigAuthFailed {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
		for _, a := range testAccounts {
			if bytes.Contains(body, []byte(a.SecretKey)) || bytes.Contains(body, []byte(a.Token)) {
				t.Errorf("%s: the body carries a secret: %s", name, body)
			}
		}
	}
}

func TestRequestsCCIRefusesByPathOrQuery(t *testing.T) {
	_, srv, _ := testGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	}))
	cases := []struct {
		method, path string
		code         int
		errorCode    string
	}{
		{"GET", "/api/v1/namespaces/a/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", 400, cciBodyError},
		{"GET", "/api/v1/namespaces/a/pods?sendInitialEvents=false", 400, cciBodyError},
		{"GET", "/api/v1/namespaces/a/pods?watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=1", 400, cciBodyError},
		{"GET", "/api/v1/watch/namespaces/a/pods?resourceVersionMatch=NotOlderThan", 400, cciBodyError},
		{"GET", "/api/v1/namespaces/a/pods?resourceVersionMatch=NotOlderThan&resourceVersion=1", 200, ""},
		{"GET", "/api/v1/persistentvolumes", 404, ""},
		{"GET", "/api/v1/persistentvolumes/pv-1", 404, ""},
		{"POST", "/api/v1/persistentvolumes", 404, ""},
		{"GET", "/api/v1/watch/persistentvolumes", 404, ""},
		{"GET", "/api/v1/pods", 400, cciNamespaceRequired},
		{"GET", "/api/v1/pods?watch=true", 400, cciNamespaceRequired},
		{"GET", "/api/v1/watch/configmaps", 400, cciNamespaceRequired},
		{"GET", "/apis/networking.cci.io/v1beta1/networks", 400, cciNamespaceRequired},
		{"GET", "/api/v1/namespaces", 200, ""},
		{"GET", "/api/v1/nodes", 200, ""},
		{"GET", "/apis/storage.k8s.io/v1/storageclasses", 200, ""},
		{"GET", "/api/v1/namespaces/a/pods", 200, ""},
		{"GET", "/apis/networking.cci.io/v1beta1/namespaces/a/networks", 200, ""},
		{"GET", "/apis", 200, ""},
	}
	for _, c := range cases {
		code, body := send(t, srv, "e2e", c.method, c.path, "", "")
		if code != c.code {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.code)
			continue
		}
		if c.errorCode != "" && errorCodeOf(t, body) != c.errorCode {
			t.Errorf("%s %s: %s, want errorCode %s", c.method, c.path, body, c.errorCode)
		}
		if c.code == 404 && !strings.Contains(string(body), "the server could not find the requested resource") {
			t.Errorf("%s %s: %s", c.method, c.path, body)
		}
	}
}

func TestNamespacesBelongToAccounts(t *testing.T) {
	created := 0
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && strings.Contains(mustRead(r), `"name":"taken"`):
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"AlreadyExists","code":409}`))
		case r.Method == "POST":
			created++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"mine","uid":"u-1",` +
				`"annotations":{"testbed.burstlet.io/cci-account":"e2e"}},"status":{"phase":"Active"}}`))
		default:
			_, _ = w.Write([]byte(`{"kind":"NamespaceList","apiVersion":"v1","metadata":{},"items":[` +
				`{"metadata":{"name":"mine","uid":"u-1","annotations":{"testbed.burstlet.io/cci-account":"e2e"}},"status":{"phase":"Active"}},` +
				`{"metadata":{"name":"theirs","annotations":{"testbed.burstlet.io/cci-account":"other"}},"status":{"phase":"Active"}},` +
				`{"metadata":{"name":"anyone"},"status":{"phase":"Active"}}]}`))
		}
	})
	theirs := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "theirs",
		Annotations: map[string]string{CCIAccountAnnotation: "other"}}}
	g, srv, _ := testGateway(t, upstream, theirs)
	ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"mine"}}`
	code, body := send(t, srv, "full", "POST", "/api/v1/namespaces", "application/json", ns)
	if code != http.StatusBadRequest || errorCodeOf(t, body) != cciNamespaceQuota || created != 0 {
		t.Fatalf("quota 0: %d %s", code, body)
	}
	code, body = send(t, srv, "e2e", "POST", "/api/v1/namespaces", "application/json", ns)
	if code != http.StatusCreated || !strings.Contains(string(body), `"phase":"Pending"`) {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body = send(t, srv, "e2e", "POST", "/api/v1/namespaces", "application/json",
		`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"taken"}}`)
	if code != http.StatusConflict || errorCodeOf(t, body) != cciNamespaceExists ||
		!strings.Contains(string(body), "namespace name is already exist") {
		t.Fatalf("conflict: %d %s", code, body)
	}
	for _, path := range []string{"/api/v1/namespaces/theirs", "/api/v1/namespaces/theirs/pods",
		"/apis/networking.cci.io/v1beta1/namespaces/theirs/networks/n", "/api/v1/namespaces/" + CCIStorageNamespace + "/configmaps"} {
		if code, body := send(t, srv, "e2e", "GET", path, "", ""); code != http.StatusForbidden || errorCodeOf(t, body) != cciNoRight {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	code, body = send(t, srv, "e2e", "GET", "/api/v1/namespaces", "", "")
	if code != http.StatusOK || strings.Contains(string(body), "theirs") || !strings.Contains(string(body), "anyone") ||
		strings.Count(string(body), `"phase":"Pending"`) != 1 {
		t.Fatalf("list: %d %s", code, body)
	}
	g.now = func() time.Time { return time.Now().Add(3 * time.Second) }
	if _, body = send(t, srv, "e2e", "GET", "/api/v1/namespaces", "", ""); strings.Contains(string(body), "Pending") {
		t.Fatalf("still Pending after NamespacePending: %s", body)
	}
}

func mustRead(r *http.Request) string {
	data, _ := io.ReadAll(r.Body)
	return string(data)
}

func TestUpgradesAndWatchesStreamThrough(t *testing.T) {
	var lines []string
	_, srv, _ := testGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(brw, buf); err == nil {
				_, _ = conn.Write(buf)
			}
			return
		}
		// A namespace watch: one event a line, flushed one at a time.
		w.Header().Set("Content-Type", "application/json")
		for _, owner := range []string{"e2e", "other", ""} {
			ann := ""
			if owner != "" {
				ann = `,"annotations":{"testbed.burstlet.io/cci-account":"` + owner + `"}`
			}
			_, _ = w.Write([]byte(`{"type":"ADDED","object":{"kind":"Namespace","metadata":{"name":"ns-` + owner + `"` + ann + "}}}\n"))
			w.(http.Flusher).Flush()
		}
	}))
	// Upgrade: the 101 and the bytes after it pass both ways.
	u, _ := url.Parse(srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("POST /api/v1/namespaces/a/pods/p/exec?command=sh HTTP/1.1\r\nHost: " + u.Host +
		"\r\nX-Auth-Token: token-e2e\r\nConnection: Upgrade\r\nUpgrade: echo\r\nContent-Length: 0\r\n\r\n"))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	_, _ = conn.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the upgrade: %q %v", buf, err)
	}
	// Watch: another account's namespace is not shown.
	code, body := send(t, srv, "e2e", "GET", "/api/v1/namespaces?watch=true", "", "")
	lines = strings.Split(strings.TrimSpace(string(body)), "\n")
	if code != http.StatusOK || len(lines) != 2 || strings.Contains(string(body), "ns-other") {
		t.Fatalf("namespace watch: %d %s", code, body)
	}
}
