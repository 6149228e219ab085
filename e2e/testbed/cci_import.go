package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// CCI's storage import API (api-cci cci_02_2021..2023):
//
//	POST   /api/v1/namespaces/{ns}/extended-persistentvolumeclaims                 import
//	GET    /api/v1/namespaces/{ns}/extended-persistentvolumeclaims?storageType=T   list (T: bs, nfs, efs, obs)
//	DELETE /api/v1/namespaces/{ns}/persistentvolumeclaims/{name}?deleteVolume=false&storageType=nfs   unbind

// Storage classes of file systems: nfs-rw is SFS, efs-* are SFS Turbo.
var fileSystemClasses = map[string]string{
	"nfs-rw": FileSystemSFS, "efs-standard": FileSystemSFSTurbo, "efs-performance": FileSystemSFSTurbo,
}

// storageTypeClasses: the classes each storageType of the list call covers.
var storageTypeClasses = map[string][]string{
	"bs": {"sata", "sas", "ssd"}, "nfs": {"nfs-rw"}, "efs": {"efs-standard", "efs-performance"}, "obs": {"obs"},
}

// importRequest is a valid import body.
type importRequest struct {
	Name, VolumeID, FSType, DeviceMountPath, Class string
	Storage                                        resource.Quantity
	AccessModes                                    []corev1.PersistentVolumeAccessMode
	Labels, Annotations                            map[string]string
}

func importBodyError(detail string) *apiError {
	return cciBadRequest(cciImportBodyError, "volume import:request body error: "+detail)
}

// parseImport checks an import body for namespace ns:
//   - not a v1 PersistentVolumeClaim with metadata.name, annotations fsType and volumeID,
//     spec.storageClassName and spec.resources.requests.storage: 400 CCI.01.400106;
//   - a volume ID longer than 64: CCI.01.400303;
//   - fsType nfs with a class other than nfs-rw, efs-standard, efs-performance: CCI.01.400307;
//     one of those classes with another fsType, or without deviceMountPath (server:/path):
//     CCI.01.400106.
func parseImport(body []byte, ns string) (*importRequest, *apiError) {
	var in struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name        string            `json:"name"`
			Namespace   string            `json:"namespace"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			AccessModes      []corev1.PersistentVolumeAccessMode `json:"accessModes"`
			StorageClassName string                              `json:"storageClassName"`
			Resources        struct {
				Requests map[string]string `json:"requests"`
			} `json:"resources"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, importBodyError("not a PersistentVolumeClaim: " + err.Error())
	}
	if in.APIVersion != "v1" || in.Kind != "PersistentVolumeClaim" {
		return nil, importBodyError("apiVersion must be v1 and kind PersistentVolumeClaim")
	}
	if msgs := validation.IsDNS1123Subdomain(in.Metadata.Name); len(msgs) > 0 {
		return nil, importBodyError("metadata.name: " + strings.Join(msgs, "; "))
	}
	if in.Metadata.Namespace != "" && in.Metadata.Namespace != ns {
		return nil, importBodyError("metadata.namespace is not the namespace of the path")
	}
	req := &importRequest{Name: in.Metadata.Name, Class: in.Spec.StorageClassName, AccessModes: in.Spec.AccessModes,
		Labels: in.Metadata.Labels, Annotations: in.Metadata.Annotations,
		VolumeID: in.Metadata.Annotations["volumeID"], FSType: in.Metadata.Annotations["fsType"],
		DeviceMountPath: in.Metadata.Annotations["deviceMountPath"]}
	switch {
	case req.FSType == "":
		return nil, importBodyError("annotation fsType is required")
	case req.VolumeID == "":
		return nil, importBodyError("annotation volumeID is required")
	case len(req.VolumeID) > 64:
		return nil, cciBadRequest(cciVolumeIDTooLong, "storage volume id len invalid: no bigger than 64")
	case req.Class == "":
		return nil, importBodyError("spec.storageClassName is required")
	}
	storage, ok := in.Spec.Resources.Requests["storage"]
	q, err := resource.ParseQuantity(storage)
	if !ok || err != nil || q.Sign() <= 0 {
		return nil, importBodyError("spec.resources.requests.storage must be a quantity like 10Gi")
	}
	req.Storage = q
	for _, m := range req.AccessModes {
		if m != corev1.ReadWriteOnce && m != corev1.ReadOnlyMany && m != corev1.ReadWriteMany {
			return nil, importBodyError(fmt.Sprintf("spec.accessModes: %q is not a access mode", m))
		}
	}
	if len(req.AccessModes) == 0 {
		req.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	}
	_, fileClass := fileSystemClasses[req.Class]
	switch {
	case req.FSType == "nfs" && !fileClass:
		return nil, cciBadRequest(cciNFSClass, `nfs storage class type err,use "nfs-rw"`)
	case req.FSType != "nfs" && fileClass:
		return nil, importBodyError("fsType must be nfs for storage class " + req.Class)
	case fileClass:
		if _, _, ok := splitSharePath(req.DeviceMountPath); !ok {
			return nil, importBodyError("annotation deviceMountPath (the share path, server:/path) is required for nfs")
		}
	}
	return req, nil
}

// checkRecord refuses an import of file system fs (nil: no such volume, CCI.01.400306): an EVS
// or OBS import, a class of the other file system type, or a deviceMountPath that is not the
// file system's share path is CCI.01.400305 "storage volume not available".
func checkRecord(req *importRequest, fs *FileSystem) *apiError {
	if fs == nil {
		return cciBadRequest(cciVolumeNotFound, "storage volume is not found")
	}
	unavailable := func(detail string) *apiError {
		return cciBadRequest(cciVolumeUnavailable, "storage volume not available: "+detail)
	}
	if fileSystemClasses[req.Class] != fs.Type {
		return unavailable(fmt.Sprintf("volume %s is %s, storage class %s is not", fs.ID, fs.Type, req.Class))
	}
	if req.DeviceMountPath != fs.SharePath {
		return unavailable(fmt.Sprintf("deviceMountPath is not the share path of volume %s", fs.ID))
	}
	return nil
}

// extendedClaims serves the import (POST) and the list (GET) calls.
func (g *cciGateway) extendedClaims(w http.ResponseWriter, r *http.Request, info *request.RequestInfo, entry *requestLog) {
	switch {
	case info.Verb == "create" && info.Name == "":
		body, err := readBody(r, maxSignedBody)
		if err != nil {
			writeCCIError(w, importBodyError(err.Error()))
			return
		}
		req, e := parseImport(body, info.Namespace)
		if e == nil {
			e = g.importClaim(r.Context(), w, info.Namespace, req)
		}
		if e != nil {
			entry.note = e.Message
			writeCCIError(w, e)
		}
	case info.Verb == "list":
		g.listImported(r.Context(), w, info.Namespace, r.URL.Query().Get("storageType"))
	default:
		writeCCIError(w, &apiError{Code: http.StatusMethodNotAllowed, Reason: metav1.StatusReasonMethodNotAllowed,
			Message: "extended-persistentvolumeclaims: only create and list"})
	}
}

// importClaim binds file system req.VolumeID to a new claim in ns: a PersistentVolume (NFS, the
// share path; reclaim policy Delete) and the claim on it, then the record's boundTo. It writes
// the 201 itself; an error is for the caller to write.
func (g *cciGateway) importClaim(ctx context.Context, w http.ResponseWriter, ns string, req *importRequest) *apiError {
	g.storeMu.Lock()
	defer g.storeMu.Unlock()
	fs, err := GetFileSystem(ctx, g.admin, req.VolumeID)
	var found *FileSystem
	switch {
	case err == nil:
		found = &fs
	case !apierrors.IsNotFound(err):
		return &apiError{Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError, Message: err.Error()}
	}
	if e := checkRecord(req, found); e != nil {
		return e
	}
	if fs.BoundTo != "" {
		if parts := strings.SplitN(fs.BoundTo, "/", 3); len(parts) == 3 {
			pvc, err := g.admin.CoreV1().PersistentVolumeClaims(parts[0]).Get(ctx, parts[1], metav1.GetOptions{})
			if err == nil && string(pvc.UID) == parts[2] {
				return cciBadRequest(cciVolumeProvisioned, "storage volume already provisioned")
			}
		}
		return cciBadRequest(cciVolumeUnavailable, "storage volume not available: being deleted with its claim")
	}
	server, path, _ := splitSharePath(fs.SharePath)
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: importedPVPrefix + fs.ID, Labels: map[string]string{CCIImportLabel: "true"},
			Annotations: map[string]string{CCIVolumeIDAnnotation: fs.ID, "pv.kubernetes.io/namespace": ns}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: req.Storage},
			AccessModes:                   req.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              req.Class,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: ns, Name: req.Name},
			PersistentVolumeSource: corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: server, Path: path}},
		},
	}
	if e := g.createImportPV(ctx, pv); e != nil {
		return e
	}
	labels := map[string]string{CCIImportLabel: "true"}
	annotations := map[string]string{"kubernetes.io/volumeId": fs.ID, CCIVolumeIDAnnotation: fs.ID}
	for k, v := range req.Labels {
		labels[k] = v
	}
	for k, v := range req.Annotations {
		annotations[k] = v
	}
	labels[CCIImportLabel] = "true"
	annotations[CCIVolumeIDAnnotation] = fs.ID
	class := req.Class
	filesystem := corev1.PersistentVolumeFilesystem
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: req.AccessModes, StorageClassName: &class,
			VolumeName: pv.Name, VolumeMode: &filesystem,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: req.Storage}}},
	}
	created, err := g.admin.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		_ = g.admin.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		writeKubeError(w, err, cciImportBodyError)
		return nil
	}
	if err := setBoundTo(ctx, g.admin, fs.ID, "", claimKey(ns, created.Name, created.UID)); err != nil {
		g.logf("file system %s: recording its claim %s/%s: %v", fs.ID, ns, created.Name, err)
	}
	g.logf("file system %s imported as claim %s/%s (PersistentVolume %s)", fs.ID, ns, created.Name, pv.Name)
	created.APIVersion, created.Kind = "v1", "PersistentVolumeClaim"
	writeJSON(w, http.StatusCreated, created)
	return nil
}

// createImportPV creates an imported claim's PV; one left by an earlier claim of the same file
// system that is still going away is waited for (10 s at most).
func (g *cciGateway) createImportPV(ctx context.Context, pv *corev1.PersistentVolume) *apiError {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := g.admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) || time.Now().After(deadline) {
			return cciBadRequest(cciVolumeUnavailable, "storage volume not available: "+err.Error())
		}
		old, err := g.admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if err == nil && old.DeletionTimestamp == nil {
			// Left behind (the gateway stopped between the claim's end and the PV's deletion).
			_ = g.admin.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
		}
		select {
		case <-ctx.Done():
			return cciBadRequest(cciVolumeUnavailable, "storage volume not available: "+ctx.Err().Error())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// listImported answers the list call: a JSON array of {persistentVolumeClaim, persistentVolume,
// storageInfo} for the imported claims of ns whose class is of storageType (default bs).
func (g *cciGateway) listImported(ctx context.Context, w http.ResponseWriter, ns, storageType string) {
	if storageType == "" {
		storageType = "bs"
	}
	classes, ok := storageTypeClasses[storageType]
	if !ok {
		writeCCIError(w, cciBadRequest(cciStorageTypeInvalid, "storage type parameter invalid: nfs/obs/bs"))
		return
	}
	claims, err := g.admin.CoreV1().PersistentVolumeClaims(ns).List(ctx,
		metav1.ListOptions{LabelSelector: CCIImportLabel + "=true"})
	if err != nil {
		writeKubeError(w, err, cciBodyError)
		return
	}
	sort.Slice(claims.Items, func(i, j int) bool { return claims.Items[i].Name < claims.Items[j].Name })
	out := []map[string]any{}
	for i := range claims.Items {
		pvc := &claims.Items[i]
		if pvc.Spec.StorageClassName == nil || !slices.Contains(classes, *pvc.Spec.StorageClassName) {
			continue
		}
		pvc.APIVersion, pvc.Kind = "v1", "PersistentVolumeClaim"
		item := map[string]any{"persistentVolumeClaim": pvc, "persistentVolume": map[string]any{}}
		pv, err := g.admin.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err == nil {
			pv.APIVersion, pv.Kind = "v1", "PersistentVolume"
			item["persistentVolume"] = pv
		}
		id := pvc.Annotations[CCIVolumeIDAnnotation]
		state := "available"
		fs, err := GetFileSystem(ctx, g.admin, id)
		if err != nil || fs.BoundTo != claimKey(pvc.Namespace, pvc.Name, pvc.UID) {
			state = "deleting"
		}
		size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		item["storageInfo"] = map[string]any{
			"kind": "Volume", "apiVersion": "paas/v1beta1",
			"metadata": map[string]any{"name": pvc.Spec.VolumeName, "creationTimestamp": pvc.CreationTimestamp,
				"labels": map[string]string{"kubernetes.io/namespace": ns}},
			"spec": map[string]any{"name": pvc.Spec.VolumeName, "size": (size.Value() + (1<<30 - 1)) >> 30,
				"volume_type": *pvc.Spec.StorageClassName, "export_location": fs.SharePath},
			"status": map[string]any{"id": id, "status": state},
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteClaim serves a claim DELETE carrying CCI's deleteVolume / storageType parameters.
// deleteVolume=false is the unbind: storageType is required (bs, nfs or obs; an SFS or SFS Turbo
// claim takes nfs), the record is freed first, then the claim and its PV are deleted: 200, no
// body. Otherwise (true or absent) the delete goes on as a plain one, without the parameters, and
// the file system goes with the claim (watchImportedClaims).
func (g *cciGateway) deleteClaim(w http.ResponseWriter, r *http.Request, info *request.RequestInfo, entry *requestLog) {
	q := r.URL.Query()
	deleteVolume, storageType := strings.ToLower(q.Get("deleteVolume")), q.Get("storageType")
	refuse := func(e *apiError) {
		entry.note = e.Message
		writeCCIError(w, e)
	}
	if deleteVolume != "" && deleteVolume != "true" && deleteVolume != "false" {
		refuse(cciBadRequest(cciDeleteVolumeBad, "storage request body invalid: deleteVolume must be true or false"))
		return
	}
	validType := storageType == "bs" || storageType == "nfs" || storageType == "obs"
	if (deleteVolume == "false" && !validType) || (storageType != "" && !validType) {
		refuse(cciBadRequest(cciStorageTypeInvalid, "storage type parameter invalid: nfs/obs/bs"))
		return
	}
	q.Del("deleteVolume")
	q.Del("storageType")
	r.URL.RawQuery = q.Encode()
	if deleteVolume != "false" {
		g.proxy.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	pvc, err := g.admin.CoreV1().PersistentVolumeClaims(info.Namespace).Get(ctx, info.Name, metav1.GetOptions{})
	if err != nil {
		writeKubeError(w, err, cciBodyError)
		return
	}
	id := pvc.Annotations[CCIVolumeIDAnnotation]
	if pvc.Labels[CCIImportLabel] != "true" || id == "" {
		g.proxy.ServeHTTP(w, r) // not imported: nothing to keep
		return
	}
	if storageType != "nfs" {
		refuse(cciBadRequest(cciStorageTypeInvalid, "storage type parameter invalid: nfs/obs/bs"))
		return
	}
	g.storeMu.Lock()
	defer g.storeMu.Unlock()
	key := claimKey(pvc.Namespace, pvc.Name, pvc.UID)
	if fs, err := GetFileSystem(ctx, g.admin, id); err == nil && fs.BoundTo == key {
		if err := setBoundTo(ctx, g.admin, id, key, ""); err != nil {
			writeKubeError(w, err, cciBodyError)
			return
		}
	}
	uid := pvc.UID
	err = g.admin.CoreV1().PersistentVolumeClaims(pvc.Namespace).Delete(ctx, pvc.Name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		writeKubeError(w, err, cciBodyError)
		return
	}
	err = g.admin.CoreV1().PersistentVolumes().Delete(ctx, importedPVPrefix+id, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		g.logf("file system %s: deleting the PersistentVolume of its unbound claim: %v", id, err)
	}
	g.logf("file system %s unbound from claim %s/%s (kept)", id, pvc.Namespace, pvc.Name)
	w.WriteHeader(http.StatusOK)
}
