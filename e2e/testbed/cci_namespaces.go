package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// Namespaces as CCI keeps them: each belongs to the account that created it (CCIAccountAnnotation),
// an account owns at most its NamespaceQuota, names are unique across accounts (another
// account's namespace exists but cannot be seen: 409 on create, 403 on any request into it), and
// a new namespace is Pending for a while.

// checkNamespaceAccess refuses (403 CCI.01.403104) a request into another account's namespace or
// into the file system records.
func (g *cciGateway) checkNamespaceAccess(ctx context.Context, acct *CCIAccount, ns string) *apiError {
	if ns == CCIStorageNamespace {
		return cciForbidden()
	}
	owner, err := g.namespaceOwner(ctx, ns)
	if err != nil {
		return &apiError{Code: http.StatusServiceUnavailable, Reason: metav1.StatusReasonServiceUnavailable,
			Message: "looking up namespace " + ns + ": " + err.Error()}
	}
	if owner != "" && owner != acct.Name {
		return cciForbidden()
	}
	return nil
}

// namespaceOwner is the account that created namespace ns ("" for none, or no such namespace).
func (g *cciGateway) namespaceOwner(ctx context.Context, ns string) (string, error) {
	if g.nsLister != nil {
		if obj, err := g.nsLister.Get(ns); err == nil {
			return obj.Annotations[CCIAccountAnnotation], nil
		}
	}
	obj, err := g.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return obj.Annotations[CCIAccountAnnotation], nil
}

// ownedNamespaces counts the namespaces acct owns that are not terminating.
func (g *cciGateway) ownedNamespaces(ctx context.Context, acct string) (int, error) {
	list, err := g.admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ns := range list.Items {
		if ns.Annotations[CCIAccountAnnotation] == acct && ns.DeletionTimestamp == nil && ns.Status.Phase != "Terminating" {
			n++
		}
	}
	return n, nil
}

// namespaces handles requests on Namespace objects (not their subresources).
func (g *cciGateway) namespaces(w http.ResponseWriter, r *http.Request, info *request.RequestInfo, acct *CCIAccount) {
	switch info.Verb {
	case "create":
		g.createNamespace(w, r, acct)
	case "get", "list":
		g.readNamespaces(w, r, acct)
	case "watch":
		keep := func(line []byte) bool {
			var ev struct {
				Object struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				} `json:"object"`
			}
			if json.Unmarshal(line, &ev) != nil {
				return true
			}
			owner := ev.Object.Metadata.Annotations[CCIAccountAnnotation]
			return owner == "" || owner == acct.Name
		}
		g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), watchFilterKey{}, keep)))
	case "update":
		g.updateNamespace(w, r, info)
	case "patch":
		body, err := readBody(r, maxSignedBody)
		if err == nil && bytes.Contains(body, []byte(CCIAccountAnnotation)) {
			writeCCIError(w, cciForbidden())
			return
		}
		g.proxy.ServeHTTP(w, r)
	default:
		g.proxy.ServeHTTP(w, r)
	}
}

// decodeObject reads a JSON object keeping numbers as they are.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, &json.UnsupportedValueError{Str: "null"}
	}
	return obj, nil
}

// mapAt returns obj[key] as an object, creating it when absent.
func mapAt(obj map[string]any, key string) map[string]any {
	if m, ok := obj[key].(map[string]any); ok {
		return m
	}
	m := map[string]any{}
	obj[key] = m
	return m
}

// createNamespace checks the account's quota, stamps the owner and creates the namespace; a name
// that exists (this account's or another's) is CCI's 409 CCI.02.409101. The answer, like a read
// soon after, shows the new namespace Pending.
func (g *cciGateway) createNamespace(w http.ResponseWriter, r *http.Request, acct *CCIAccount) {
	body, err := readBody(r, maxSignedBody)
	var obj map[string]any
	if err == nil {
		obj, err = decodeObject(body)
	}
	if err != nil {
		writeCCIError(w, cciBadRequest(cciNamespaceBodyError, "ummarshal ERROR: BadNamespaceRequestBody"))
		return
	}
	g.nsMu.Lock()
	defer g.nsMu.Unlock()
	if acct.NamespaceQuota >= 0 {
		n, err := g.ownedNamespaces(r.Context(), acct.Name)
		if err != nil {
			writeKubeError(w, err, cciBodyError)
			return
		}
		if n >= acct.NamespaceQuota {
			writeCCIError(w, cciBadRequest(cciNamespaceQuota, "used namespaces exceeds quota, could not create any more"))
			return
		}
	}
	mapAt(mapAt(obj, "metadata"), "annotations")[CCIAccountAnnotation] = acct.Name
	body, _ = json.Marshal(obj)
	r.Header.Set("Content-Type", "application/json")
	reply, err := g.call(r, body)
	if err != nil {
		writeKubeError(w, err, cciBodyError)
		return
	}
	switch {
	case reply.code == http.StatusConflict:
		writeCCIError(w, &apiError{Code: http.StatusConflict, Reason: metav1.StatusReasonConflict,
			ErrorCode: cciNamespaceExists, Message: "namespace name is already exist"})
	case reply.code == http.StatusCreated || reply.code == http.StatusOK:
		created, err := decodeObject(reply.body)
		if err != nil || r.URL.Query().Has("dryRun") {
			writeReply(w, reply)
			return
		}
		if uid, _ := mapAt(created, "metadata")["uid"].(string); uid != "" {
			g.mu.Lock()
			g.created[types.UID(uid)] = g.now()
			g.mu.Unlock()
		}
		g.showPending(created)
		writeJSON(w, reply.code, created)
	default:
		writeReply(w, reply)
	}
}

// readNamespaces answers a get or list: another account's namespaces are left out of lists,
// and young namespaces of the gateway read as Pending.
func (g *cciGateway) readNamespaces(w http.ResponseWriter, r *http.Request, acct *CCIAccount) {
	reply, err := g.call(r, nil)
	if err != nil {
		writeKubeError(w, err, cciBodyError)
		return
	}
	if reply.code != http.StatusOK {
		writeReply(w, reply)
		return
	}
	obj, err := decodeObject(reply.body)
	if err != nil {
		writeReply(w, reply)
		return
	}
	if items, ok := obj["items"].([]any); ok {
		kept := make([]any, 0, len(items))
		for _, item := range items {
			ns, _ := item.(map[string]any)
			annotations, _ := mapAt(ns, "metadata")["annotations"].(map[string]any)
			if owner, _ := annotations[CCIAccountAnnotation].(string); owner != "" && owner != acct.Name {
				continue
			}
			g.showPending(ns)
			kept = append(kept, ns)
		}
		obj["items"] = kept
	} else {
		g.showPending(obj)
	}
	writeJSON(w, http.StatusOK, obj)
}

// showPending sets status.phase Pending on a namespace the gateway created less than
// NamespacePending ago (and that is not being deleted).
func (g *cciGateway) showPending(ns map[string]any) {
	meta := mapAt(ns, "metadata")
	annotations, _ := meta["annotations"].(map[string]any)
	if _, ok := annotations[CCIAccountAnnotation]; !ok || g.pending <= 0 || meta["deletionTimestamp"] != nil {
		return
	}
	uid, _ := meta["uid"].(string)
	g.mu.Lock()
	created, ok := g.created[types.UID(uid)]
	for id, t := range g.created {
		if g.now().Sub(t) > g.pending {
			delete(g.created, id)
		}
	}
	g.mu.Unlock()
	if !ok {
		// Made before this gateway started, or forgotten: its creationTimestamp (in seconds) says.
		ts, _ := meta["creationTimestamp"].(string)
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return
		}
		created = t
	}
	if g.now().Sub(created) < g.pending {
		mapAt(ns, "status")["phase"] = "Pending"
	}
}

// updateNamespace keeps the owner annotation as it is on a PUT (an account cannot give a
// namespace away or take an unowned one).
func (g *cciGateway) updateNamespace(w http.ResponseWriter, r *http.Request, info *request.RequestInfo) {
	body, err := readBody(r, maxSignedBody)
	obj, derr := decodeObject(body)
	if err != nil || derr != nil {
		g.proxy.ServeHTTP(w, r) // the API server says what is wrong with it
		return
	}
	owner, err := g.namespaceOwner(r.Context(), info.Name)
	if err != nil {
		writeKubeError(w, err, cciBodyError)
		return
	}
	annotations := mapAt(mapAt(obj, "metadata"), "annotations")
	if owner == "" {
		delete(annotations, CCIAccountAnnotation)
	} else {
		annotations[CCIAccountAnnotation] = owner
	}
	body, _ = json.Marshal(obj)
	r.Header.Set("Content-Type", "application/json")
	setBody(r, body)
	g.proxy.ServeHTTP(w, r)
}
