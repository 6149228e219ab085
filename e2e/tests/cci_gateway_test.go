package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"burstlet/e2e/testbed"
)

// gatewayClient talks to the test bed's CCI gateway as one account, with plain net/http requests
// signed by AK/SK (signCCI) or carrying its token.
type gatewayClient struct {
	t    *testing.T
	url  string
	http *http.Client
	acct testbed.CCIAccount
}

func newGatewayClient(t *testing.T, gw *testbed.CCIGateway, account string) *gatewayClient {
	t.Helper()
	acct, err := gw.Account(account)
	if err != nil {
		t.Fatal(err)
	}
	client, err := gw.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	return &gatewayClient{t: t, url: gw.URL, http: client, acct: acct}
}

// gatewayReply is an answer of the gateway.
type gatewayReply struct {
	code int
	body []byte
}

// cciError is the errorCode, message and reason of a CCI error body (or the API gateway's
// error_code and error_msg).
func (r gatewayReply) cciError() (code, message, reason string) {
	var e struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
		Reason    string `json:"reason"`
		APIGCode  string `json:"error_code"`
		APIGMsg   string `json:"error_msg"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.ErrorCode + e.APIGCode, e.Message + e.APIGMsg, e.Reason
}

// expect fails the test unless the reply has this status and (when not empty) this errorCode.
func (r gatewayReply) expect(t *testing.T, what string, code int, errorCode string) {
	t.Helper()
	got, _, _ := r.cciError()
	if r.code != code || (errorCode != "" && got != errorCode) {
		t.Fatalf("%s: HTTP %d %s, want %d %s", what, r.code, r.body, code, errorCode)
	}
}

// do sends a request signed with the account's keys (sign false: no credentials at all; a
// prepare function may change the request after signing). A non-nil body is sent as JSON.
func (g *gatewayClient) do(method, path string, body any, sign bool, prepare ...func(*http.Request)) gatewayReply {
	g.t.Helper()
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			g.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, g.url+path, bytes.NewReader(data))
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if sign {
		signCCI(req, data, g.acct.AccessKey, g.acct.SecretKey)
	}
	for _, p := range prepare {
		p(req)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return gatewayReply{code: resp.StatusCode, body: out}
}

func (g *gatewayClient) signed(method, path string, body any) gatewayReply {
	g.t.Helper()
	return g.do(method, path, body, true)
}

// signCCI signs r as Huawei Cloud's API gateway checks it (SDK-HMAC-SHA256 over method, path,
// query, the content-type, host and x-sdk-date headers, and the body), written here apart from
// the gateway's own verifier.
func signCCI(r *http.Request, body []byte, ak, sk string) {
	escape := func(s string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	segments := strings.Split(r.URL.Path, "/")
	for i, s := range segments {
		segments[i] = escape(s)
	}
	uri := strings.Join(segments, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	query, _ := url.ParseQuery(r.URL.RawQuery)
	var pairs []string
	for k, vs := range query {
		for _, v := range vs {
			pairs = append(pairs, escape(k)+"="+escape(v))
		}
	}
	sort.Strings(pairs)
	date := time.Now().UTC().Format("20060102T150405Z")
	r.Header.Set("X-Sdk-Date", date)
	names, headers := []string{"host", "x-sdk-date"}, "host:"+r.Host+"\nx-sdk-date:"+date+"\n"
	if ct := r.Header.Get("Content-Type"); ct != "" {
		names, headers = append([]string{"content-type"}, names...), "content-type:"+ct+"\n"+headers
	}
	hash := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	canonical := strings.Join([]string{r.Method, uri, strings.Join(pairs, "&"), headers, strings.Join(names, ";"),
		hash(body)}, "\n")
	mac := hmac.New(sha256.New, []byte(sk))
	mac.Write([]byte("SDK-HMAC-SHA256\n" + date + "\n" + hash([]byte(canonical))))
	r.Header.Set("Authorization", fmt.Sprintf("SDK-HMAC-SHA256 Access=%s, SignedHeaders=%s, Signature=%s",
		ak, strings.Join(names, ";"), hex.EncodeToString(mac.Sum(nil))))
}

func cciNamespaceBody(name string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name,
		"annotations": map[string]any{testbed.CCIFlavorAnnotation: testbed.CCIFlavorGeneral}}}
}

func importBody(name, volumeID, class, sharePath string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"app": "gw-test"},
			"annotations": map[string]any{"fsType": "nfs", "volumeID": volumeID, "deviceMountPath": sharePath}},
		"spec": map[string]any{"storageClassName": class,
			"resources": map[string]any{"requests": map[string]any{"storage": "10Gi"}}}}
}

// The CCI gateway in front of the backend plane answers as CCI does: accounts signing with AK/SK,
// namespaces owned by accounts, the 1.19 API, CCI's error bodies, and storage imported from file
// systems that deleting a claim destroys.
func TestCciGatewayAnswersAsCci(t *testing.T) {
	c := cciBackend(t)
	gw := c.plane.CCIGateway
	if gw == nil {
		t.Fatal("the CCI-mode backend plane records no CCI gateway")
	}
	e2e, full := newGatewayClient(t, gw, "e2e"), newGatewayClient(t, gw, "full")
	ctx := context.Background()
	suffix := time.Now().UnixNano() % 100000
	ns := fmt.Sprintf("cci-gw-%d", suffix)
	t.Cleanup(func() { _ = c.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	t.Run("version is 1.19", func(t *testing.T) {
		r := e2e.signed("GET", "/version", nil)
		var v struct{ Major, Minor, GitVersion string }
		if err := json.Unmarshal(r.body, &v); r.code != 200 || err != nil || v.Major != "1" || v.Minor != "19" ||
			!strings.HasPrefix(v.GitVersion, "v1.19.") {
			t.Fatalf("/version: %d %s", r.code, r.body)
		}
	})

	t.Run("authentication", func(t *testing.T) {
		e2e.do("GET", "/version", nil, false).expect(t, "unsigned", http.StatusUnauthorized, "APIG.0301")
		bad := e2e.do("GET", "/api/v1/namespaces", nil, false, func(r *http.Request) {
			signCCI(r, nil, e2e.acct.AccessKey, e2e.acct.SecretKey+"x")
		})
		bad.expect(t, "bad signature", http.StatusUnauthorized, "APIG.0301")
		if bytes.Contains(bad.body, []byte(e2e.acct.SecretKey)) || bytes.Contains(bad.body, []byte(e2e.acct.Token)) {
			t.Fatalf("the 401 carries a secret: %s", bad.body)
		}
		e2e.do("GET", "/version", nil, false, func(r *http.Request) {
			r.Header.Set("X-Auth-Token", e2e.acct.Token)
		}).expect(t, "token", http.StatusOK, "")
	})

	t.Run("namespace Pending then Active", func(t *testing.T) {
		e2e.signed("POST", "/api/v1/namespaces", cciNamespaceBody(ns)).expect(t, "create", http.StatusCreated, "")
		phase := func() string {
			r := e2e.signed("GET", "/api/v1/namespaces/"+ns, nil)
			var got corev1.Namespace
			if err := json.Unmarshal(r.body, &got); r.code != 200 || err != nil {
				t.Fatalf("get: %d %s", r.code, r.body)
			}
			return string(got.Status.Phase)
		}
		if p := phase(); p != "Pending" {
			t.Fatalf("a new namespace is %q, want Pending", p)
		}
		eventually(t, 15*time.Second, "namespace Active", func() error {
			if p := phase(); p != "Active" {
				return fmt.Errorf("phase %q", p)
			}
			return nil
		})
		got, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || got.Annotations[testbed.CCIAccountAnnotation] != "e2e" {
			t.Fatalf("owner annotation: %v %v", err, got.Annotations)
		}
		eventually(t, 30*time.Second, "default ServiceAccount", func() error {
			_, err := c.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			return err
		})
	})

	t.Run("namespace quota", func(t *testing.T) {
		full.signed("POST", "/api/v1/namespaces", cciNamespaceBody(ns+"-full")).
			expect(t, "full account's create", http.StatusBadRequest, "CCI.02.400106")
	})

	t.Run("names unique across accounts", func(t *testing.T) {
		theirs := fmt.Sprintf("cci-gw-theirs-%d", suffix)
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: theirs, Annotations: map[string]string{
			testbed.CCIAccountAnnotation: "another-account", testbed.CCIFlavorAnnotation: testbed.CCIFlavorGeneral}}}
		if _, err := c.cs.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.cs.CoreV1().Namespaces().Delete(context.Background(), theirs, metav1.DeleteOptions{}) })
		r := e2e.signed("POST", "/api/v1/namespaces", cciNamespaceBody(theirs))
		r.expect(t, "create of another account's name", http.StatusConflict, "CCI.02.409101")
		if _, msg, _ := r.cciError(); msg != "namespace name is already exist" {
			t.Fatalf("conflict message %q", msg)
		}
		e2e.signed("GET", "/api/v1/namespaces/"+theirs, nil).expect(t, "get", http.StatusForbidden, "CCI.01.403104")
		e2e.signed("GET", "/api/v1/namespaces/"+theirs+"/pods", nil).expect(t, "list pods", http.StatusForbidden, "CCI.01.403104")
		full.signed("GET", "/api/v1/namespaces/"+ns, nil).expect(t, "full reads e2e's", http.StatusForbidden, "CCI.01.403104")
		list := e2e.signed("GET", "/api/v1/namespaces", nil)
		if list.code != 200 || bytes.Contains(list.body, []byte(`"`+theirs+`"`)) || !bytes.Contains(list.body, []byte(`"`+ns+`"`)) {
			t.Fatalf("namespace list: %d, another account's shown or its own missing", list.code)
		}
	})

	t.Run("invalid pod", func(t *testing.T) {
		r := e2e.signed("POST", "/api/v1/namespaces/"+ns+"/pods", testbed.ProbePod("no-network", "1", "2Gi"))
		r.expect(t, "pod without an Active Network", http.StatusBadRequest, "CCI.01.400101")
		if _, msg, reason := r.cciError(); reason != "BadRequest" || !strings.Contains(msg, testbed.PolicyActiveNetwork) {
			t.Fatalf("message %q reason %q", msg, reason)
		}
	})

	t.Run("paths and parameters CCI refuses", func(t *testing.T) {
		e2e.signed("GET", "/api/v1/persistentvolumes", nil).expect(t, "PV list", http.StatusNotFound, "")
		e2e.signed("GET", "/api/v1/pods", nil).expect(t, "pods of all namespaces", http.StatusBadRequest, "CCI.01.400102")
		e2e.signed("GET", "/apis/networking.cci.io/v1beta1/networks", nil).
			expect(t, "Networks of all namespaces", http.StatusBadRequest, "CCI.01.400102")
		e2e.signed("GET", "/api/v1/namespaces/"+ns+"/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", nil).
			expect(t, "watch with sendInitialEvents", http.StatusBadRequest, "CCI.01.400101")
		e2e.signed("GET", "/api/v1/namespaces/"+ns+"/pods?watch=true&resourceVersionMatch=NotOlderThan", nil).
			expect(t, "watch with resourceVersionMatch", http.StatusBadRequest, "CCI.01.400101")
		e2e.signed("GET", "/api/v1/namespaces/"+ns+"/pods", nil).expect(t, "pods of a namespace", http.StatusOK, "")
	})

	t.Run("watch streams", func(t *testing.T) {
		req, err := http.NewRequest("GET", gw.URL+"/api/v1/namespaces/"+ns+"/configmaps?watch=true&timeoutSeconds=20", nil)
		if err != nil {
			t.Fatal(err)
		}
		signCCI(req, nil, e2e.acct.AccessKey, e2e.acct.SecretKey)
		resp, err := e2e.http.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("watch: %v %v", err, resp)
		}
		defer resp.Body.Close()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}}
		if _, err := c.cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		seen := make(chan bool, 1)
		go func() {
			scanner := bufio.NewScanner(resp.Body)
			scanner.Buffer(nil, 1<<20)
			for scanner.Scan() {
				if strings.Contains(scanner.Text(), `"name":"watched"`) {
					seen <- true
					return
				}
			}
			seen <- false
		}()
		select {
		case ok := <-seen:
			if !ok {
				t.Fatal("the watch ended without the ConfigMap")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event for the ConfigMap within 10s")
		}
	})

	t.Run("storage import", func(t *testing.T) { gatewayStorage(t, c, e2e, ns, suffix) })

	t.Run("pod fields 1.19 lacks are dropped", func(t *testing.T) {
		network := testbed.NewNetwork("default-network", "gw-subnet")
		e2e.signed("POST", "/apis/networking.cci.io/v1beta1/namespaces/"+ns+"/networks", network.Object).
			expect(t, "Network", http.StatusCreated, "")
		c.waitNetwork(t, ns, testbed.NetworkActive)
		pod := testbed.ProbePod(fmt.Sprintf("sidecar-%d", suffix), "1", "2Gi")
		always := corev1.ContainerRestartPolicyAlways
		pod.Spec.InitContainers = []corev1.Container{{Name: "side", Image: "registry.local/side:1",
			RestartPolicy: &always, Resources: pod.Spec.Containers[0].Resources}}
		e2e.signed("POST", "/api/v1/namespaces/"+ns+"/pods", pod).expect(t, "pod with a sidecar", http.StatusCreated, "")
		got, err := c.cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].RestartPolicy != nil {
			t.Fatalf("the API server got the init container %+v", got.Spec.InitContainers)
		}
		logged, _ := os.ReadFile(gw.Log)
		for _, want := range []string{"pod=" + pod.Name, "pod " + ns + "/" + pod.Name + ": dropped spec.initContainers[0].restartPolicy"} {
			if !bytes.Contains(logged, []byte(want)) {
				t.Errorf("the gateway log lacks %q", want)
			}
		}
	})
}

// gatewayStorage imports an SFS and an SFS Turbo file system, lists them by storageType, unbinds
// one (kept), deletes the other's claim (destroyed) and deletes a namespace with an imported
// claim (destroyed).
func gatewayStorage(t *testing.T, c *cciPlane, e2e *gatewayClient, ns string, suffix int64) {
	ctx := context.Background()
	sfs := testbed.FileSystem{ID: fmt.Sprintf("sfs-%d", suffix), Type: testbed.FileSystemSFS,
		SharePath: fmt.Sprintf("sfs-nas01.testbed.local:/share-%d", suffix)}
	turbo := testbed.FileSystem{ID: fmt.Sprintf("turbo-%d", suffix), Type: testbed.FileSystemSFSTurbo,
		SharePath: "192.168.0.10:/"}
	for _, fs := range []testbed.FileSystem{sfs, turbo} {
		if err := testbed.CreateFileSystem(ctx, c.cs, fs); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = testbed.DeleteFileSystem(context.Background(), c.cs, fs.ID) })
	}
	path := "/api/v1/namespaces/" + ns + "/extended-persistentvolumeclaims"
	r := e2e.signed("POST", path, importBody("sfs-data", sfs.ID, "nfs-rw", sfs.SharePath))
	r.expect(t, "SFS import", http.StatusCreated, "")
	var claim corev1.PersistentVolumeClaim
	if err := json.Unmarshal(r.body, &claim); err != nil || claim.Annotations["kubernetes.io/volumeId"] != sfs.ID ||
		claim.Spec.VolumeName == "" || claim.Labels["app"] != "gw-test" {
		t.Fatalf("imported claim: %v %s", err, r.body)
	}
	e2e.signed("POST", path, importBody("turbo-data", turbo.ID, "efs-standard", turbo.SharePath)).
		expect(t, "SFS Turbo import", http.StatusCreated, "")
	e2e.signed("POST", path, importBody("nothing", fmt.Sprintf("none-%d", suffix), "nfs-rw", sfs.SharePath)).
		expect(t, "unknown volume", http.StatusBadRequest, "CCI.01.400306")
	for query, want := range map[string]string{"?storageType=nfs": "sfs-data", "?storageType=efs": "turbo-data", "": ""} {
		var items []struct {
			PersistentVolumeClaim corev1.PersistentVolumeClaim `json:"persistentVolumeClaim"`
			PersistentVolume      corev1.PersistentVolume      `json:"persistentVolume"`
			StorageInfo           map[string]any               `json:"storageInfo"`
		}
		r := e2e.signed("GET", path+query, nil)
		if err := json.Unmarshal(r.body, &items); r.code != 200 || err != nil {
			t.Fatalf("list %q: %d %s", query, r.code, r.body)
		}
		var names []string
		for _, it := range items {
			names = append(names, it.PersistentVolumeClaim.Name)
			if it.PersistentVolume.Name != it.PersistentVolumeClaim.Spec.VolumeName || it.StorageInfo == nil {
				t.Errorf("list %q: item %s has no volume or storage info", query, it.PersistentVolumeClaim.Name)
			}
		}
		if strings.Join(names, ",") != want {
			t.Fatalf("list %q: %v, want %q", query, names, want)
		}
	}
	eventually(t, 30*time.Second, "imported claims Bound", func() error {
		for _, name := range []string{"sfs-data", "turbo-data"} {
			pvc, err := c.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if pvc.Status.Phase != corev1.ClaimBound {
				return fmt.Errorf("%s is %s", name, pvc.Status.Phase)
			}
		}
		return nil
	})

	claims := "/api/v1/namespaces/" + ns + "/persistentvolumeclaims/"
	e2e.signed("DELETE", claims+"sfs-data?deleteVolume=false", nil).
		expect(t, "unbind without storageType", http.StatusBadRequest, "CCI.01.400301")
	r = e2e.signed("DELETE", claims+"sfs-data?deleteVolume=false&storageType=nfs", nil)
	if r.code != 200 || len(r.body) != 0 {
		t.Fatalf("unbind: %d %s", r.code, r.body)
	}
	if fs, err := testbed.GetFileSystem(ctx, c.cs, sfs.ID); err != nil || fs.BoundTo != "" {
		t.Fatalf("after unbind the file system is %+v (%v), want kept and free", fs, err)
	}
	gone(t, "the unbound claim", func() error {
		_, err := c.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "sfs-data", metav1.GetOptions{})
		return err
	})

	r = e2e.signed("DELETE", claims+"turbo-data", nil)
	if r.code != 200 {
		t.Fatalf("plain delete: %d %s", r.code, r.body)
	}
	gone(t, "the SFS Turbo file system deleted with its claim", func() error {
		_, err := testbed.GetFileSystem(ctx, c.cs, turbo.ID)
		return err
	})
	logged, _ := os.ReadFile(c.plane.CCIGateway.Log)
	if want := "file system " + turbo.ID + " deleted with its claim " + ns + "/turbo-data"; !bytes.Contains(logged, []byte(want)) {
		t.Errorf("the gateway log lacks %q", want)
	}

	// The kept file system imported again in a namespace of its own, which is then deleted.
	ns2 := ns + "-gone"
	e2e.signed("POST", "/api/v1/namespaces", cciNamespaceBody(ns2)).expect(t, "second namespace", http.StatusCreated, "")
	t.Cleanup(func() { _ = c.cs.CoreV1().Namespaces().Delete(context.Background(), ns2, metav1.DeleteOptions{}) })
	e2e.signed("POST", "/api/v1/namespaces/"+ns2+"/extended-persistentvolumeclaims",
		importBody("again", sfs.ID, "nfs-rw", sfs.SharePath)).expect(t, "import after unbind", http.StatusCreated, "")
	e2e.signed("DELETE", "/api/v1/namespaces/"+ns2, nil).expect(t, "namespace delete", http.StatusOK, "")
	gone(t, "the SFS file system deleted with its namespace", func() error {
		_, err := testbed.GetFileSystem(ctx, c.cs, sfs.ID)
		return err
	})
}

// gone waits until get answers NotFound.
func gone(t *testing.T, what string, get func() error) {
	t.Helper()
	eventually(t, 60*time.Second, what, func() error {
		if err := get(); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
}
