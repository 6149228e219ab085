package testbed

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// CCI has no PersistentVolume API: a file system (SFS or SFS Turbo) is imported into a namespace
// as a claim, and deleting that claim deletes the file system unless CCI's unbind call is used.
// The gateway keeps the file systems as records, one ConfigMap each in CCIStorageNamespace.

const (
	// CCIStorageNamespace holds the file system records (no account can reach it through the
	// gateway; it is labelled plain, so the policies skip it).
	CCIStorageNamespace = "testbed-cci-storage"
	// File system types (FileSystem.Type).
	FileSystemSFS      = "sfs"
	FileSystemSFSTurbo = "sfs-turbo"
	// CCIImportLabel ("true") marks the claims and PersistentVolumes the gateway imported;
	// CCIVolumeIDAnnotation on them names the file system.
	CCIImportLabel        = "testbed.burstlet.io/cci-import"
	CCIVolumeIDAnnotation = "testbed.burstlet.io/cci-volume-id"
	// fileSystemLabel ("true") marks the record ConfigMaps.
	fileSystemLabel = "testbed.burstlet.io/cci-file-system"
	// importedPVPrefix + volume ID names an imported claim's PersistentVolume.
	importedPVPrefix = "cci-import-"
)

// FileSystem is an SFS or SFS Turbo file system the gateway can import.
type FileSystem struct {
	// ID is the volume ID an import names (a DNS-1123 subdomain of at most 64 characters).
	ID string
	// Type is FileSystemSFS or FileSystemSFSTurbo.
	Type string
	// SharePath is the export location, "server:/path" ("sfs-nas01.testbed.local:/share-1234",
	// "192.168.0.10:/"): an import's deviceMountPath must be exactly this.
	SharePath string
	// BoundTo is "<namespace>/<name>/<uid>" of the claim that imported it, "" when none has.
	BoundTo string
}

func claimKey(ns, name string, uid types.UID) string { return ns + "/" + name + "/" + string(uid) }

func fileSystemOf(cm *corev1.ConfigMap) FileSystem {
	return FileSystem{ID: cm.Name, Type: cm.Data["type"], SharePath: cm.Data["sharePath"], BoundTo: cm.Data["boundTo"]}
}

// ensureStorageNamespace creates CCIStorageNamespace unless it exists.
func ensureStorageNamespace(ctx context.Context, cs kubernetes.Interface) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: CCIStorageNamespace,
		Labels: map[string]string{PlainNamespaceLabel: PlainNamespaceValue}}}
	_, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// CreateFileSystem records a file system the gateway can import (the backend plane's admin
// clientset). It is free (BoundTo is ignored).
func CreateFileSystem(ctx context.Context, cs kubernetes.Interface, fs FileSystem) error {
	if msgs := validation.IsDNS1123Subdomain(fs.ID); len(msgs) > 0 || len(fs.ID) > 64 {
		return fmt.Errorf("file system ID %q: a DNS-1123 subdomain of at most 64 characters", fs.ID)
	}
	if fs.Type != FileSystemSFS && fs.Type != FileSystemSFSTurbo {
		return fmt.Errorf("file system %s: type %q is neither %s nor %s", fs.ID, fs.Type, FileSystemSFS, FileSystemSFSTurbo)
	}
	if _, _, ok := splitSharePath(fs.SharePath); !ok {
		return fmt.Errorf("file system %s: share path %q is not server:/path", fs.ID, fs.SharePath)
	}
	if err := ensureStorageNamespace(ctx, cs); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: fs.ID, Namespace: CCIStorageNamespace,
			Labels: map[string]string{fileSystemLabel: "true"}},
		Data: map[string]string{"type": fs.Type, "sharePath": fs.SharePath, "boundTo": ""},
	}
	_, err := cs.CoreV1().ConfigMaps(CCIStorageNamespace).Create(ctx, cm, metav1.CreateOptions{})
	return err
}

// GetFileSystem reads a file system's record; a NotFound error when there is none (it was never
// made, or was destroyed with its claim).
func GetFileSystem(ctx context.Context, cs kubernetes.Interface, id string) (FileSystem, error) {
	cm, err := cs.CoreV1().ConfigMaps(CCIStorageNamespace).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		return FileSystem{}, err
	}
	if cm.Labels[fileSystemLabel] != "true" {
		return FileSystem{}, apierrors.NewNotFound(corev1.Resource("configmaps"), id)
	}
	return fileSystemOf(cm), nil
}

// FileSystemExists says whether the file system still exists.
func FileSystemExists(ctx context.Context, cs kubernetes.Interface, id string) (bool, error) {
	_, err := GetFileSystem(ctx, cs, id)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// ListFileSystems lists the file systems, by ID.
func ListFileSystems(ctx context.Context, cs kubernetes.Interface) ([]FileSystem, error) {
	list, err := cs.CoreV1().ConfigMaps(CCIStorageNamespace).List(ctx,
		metav1.ListOptions{LabelSelector: fileSystemLabel + "=true"})
	if err != nil {
		return nil, err
	}
	out := make([]FileSystem, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, fileSystemOf(&list.Items[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeleteFileSystem removes a file system's record (a test's cleanup); none is no error.
func DeleteFileSystem(ctx context.Context, cs kubernetes.Interface, id string) error {
	err := cs.CoreV1().ConfigMaps(CCIStorageNamespace).Delete(ctx, id, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// setBoundTo changes a record's boundTo when it is still from (retrying on conflicts).
func setBoundTo(ctx context.Context, cs kubernetes.Interface, id, from, to string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cs.CoreV1().ConfigMaps(CCIStorageNamespace).Get(ctx, id, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["boundTo"] != from {
			return fmt.Errorf("file system %s is bound to %q now, not %q", id, cm.Data["boundTo"], from)
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data["boundTo"] = to
		_, err = cs.CoreV1().ConfigMaps(CCIStorageNamespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
}

// splitSharePath splits "server:/path" into server and path.
func splitSharePath(p string) (server, path string, ok bool) {
	server, path, ok = strings.Cut(p, ":")
	if !ok || server == "" || !strings.HasPrefix(path, "/") {
		return "", "", false
	}
	return server, path, true
}

// watchImportedClaims destroys a file system when the claim that imported it goes (a plain
// DELETE, deleteVolume=true, or with its namespace) while its record is still bound to it.
func (g *cciGateway) watchImportedClaims(ctx context.Context, informer cache.SharedIndexInformer) error {
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
				g.claimGone(ctx, pvc.Annotations[CCIVolumeIDAnnotation], claimKey(pvc.Namespace, pvc.Name, pvc.UID))
			}
		},
	})
	return err
}

// claimGone destroys file system id when it is still bound to the claim key, which is gone.
func (g *cciGateway) claimGone(ctx context.Context, id, key string) {
	if id == "" {
		return
	}
	g.storeMu.Lock()
	defer g.storeMu.Unlock()
	fs, err := GetFileSystem(ctx, g.admin, id)
	if err != nil || fs.BoundTo != key {
		return // unbound first (unbind), destroyed already, or bound again since
	}
	g.destroyFileSystem(ctx, fs)
}

// destroyFileSystem deletes a bound file system's record and its PersistentVolume: the user data
// is gone with the claim. storeMu is held.
func (g *cciGateway) destroyFileSystem(ctx context.Context, fs FileSystem) {
	parts := strings.SplitN(fs.BoundTo, "/", 3)
	claim := fs.BoundTo
	if len(parts) == 3 {
		claim = parts[0] + "/" + parts[1]
	}
	err := g.admin.CoreV1().ConfigMaps(CCIStorageNamespace).Delete(ctx, fs.ID, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		g.logf("file system %s: deleting its record: %v", fs.ID, err)
		return
	}
	g.logf("file system %s deleted with its claim %s", fs.ID, claim)
	err = g.admin.CoreV1().PersistentVolumes().Delete(ctx, importedPVPrefix+fs.ID, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		g.logf("file system %s: deleting its PersistentVolume: %v", fs.ID, err)
	}
}

// reconcileFileSystems checks every period that each bound record's claim still exists (a claim
// that went while the gateway was not watching destroys its file system too).
func (g *cciGateway) reconcileFileSystems(ctx context.Context, period time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		list, err := ListFileSystems(ctx, g.admin)
		if err != nil {
			continue
		}
		for _, fs := range list {
			parts := strings.SplitN(fs.BoundTo, "/", 3)
			if len(parts) != 3 {
				continue
			}
			pvc, err := g.admin.CoreV1().PersistentVolumeClaims(parts[0]).Get(ctx, parts[1], metav1.GetOptions{})
			if apierrors.IsNotFound(err) || (err == nil && string(pvc.UID) != parts[2]) {
				g.claimGone(ctx, fs.ID, fs.BoundTo)
			}
		}
	}
}
