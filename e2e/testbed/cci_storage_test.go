package testbed

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNewerPodFieldTable(t *testing.T) {
	if len(newerPodFields) != 85 {
		t.Fatalf("%d fields, want the 85 of src/provider/cci/api_fields.cc", len(newerPodFields))
	}
	for _, f := range newerPodFields {
		if f.minor < 20 || f.minor > 36 || !strings.HasPrefix(f.path, "spec.") {
			t.Errorf("odd row %v", f)
		}
		// A list marker on a container list applies to all three lists.
		for _, list := range []string{"containers[]", "initContainers[]", "ephemeralContainers[]"} {
			if rest, ok := strings.CutPrefix(f.path, "spec."+list); ok {
				for _, other := range []string{"containers[]", "initContainers[]", "ephemeralContainers[]"} {
					if !slices.ContainsFunc(newerPodFields, func(g newerPodField) bool { return g.path == "spec."+other+rest }) {
						t.Errorf("%s has no row for spec.%s%s", f.path, other, rest)
					}
				}
			}
		}
	}
}

func TestPodFieldsUnknownTo119AreDropped(t *testing.T) {
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{
	  "restartPolicy":"Always","os":{"name":"linux"},"hostUsers":false,
	  "securityContext":{"runAsUser":1000,"appArmorProfile":{"type":"RuntimeDefault"}},
	  "affinity":{"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[
	    {"weight":1,"podAffinityTerm":{"topologyKey":"k","namespaceSelector":{},"matchLabelKeys":["a"]}}]}},
	  "initContainers":[{"name":"side","image":"i","restartPolicy":"Always","resizePolicy":[{"resourceName":"cpu","restartPolicy":"NotRequired"}]}],
	  "containers":[{"name":"app","image":"i","resources":{"limits":{"cpu":"250m"},"claims":[{"name":"c"}]},
	    "env":[{"name":"A","value":"1"},{"name":"B","valueFrom":{"fileKeyRef":{"path":"p"}}}],
	    "livenessProbe":{"grpc":{"port":1},"terminationGracePeriodSeconds":5,"periodSeconds":3},
	    "lifecycle":{"preStop":{"sleep":{"seconds":1}},"stopSignal":"SIGTERM"},
	    "volumeMounts":[{"name":"v","mountPath":"/v","recursiveReadOnly":"Disabled"}]}],
	  "ephemeralContainers":[{"name":"dbg","image":"i","restartPolicy":"Always"}],
	  "volumes":[{"name":"v","projected":{"sources":[{"configMap":{"name":"c"}},{"clusterTrustBundle":{"path":"b"}}]}},
	    {"name":"img","image":{"reference":"r"}}],
	  "topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"k","whenUnsatisfiable":"DoNotSchedule","minDomains":2}],
	  "terminationGracePeriodSeconds":9007199254740993}}`
	out, dropped := podBodyFor119("application/json", []byte(pod))
	var paths []string
	for _, d := range dropped {
		paths = append(paths, d.Path)
	}
	want := []string{
		"spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.namespaceSelector",
		"spec.containers[0].livenessProbe.terminationGracePeriodSeconds",
		"spec.containers[0].livenessProbe.grpc",
		"spec.os",
		"spec.hostUsers",
		"spec.containers[0].resources.claims",
		"spec.initContainers[0].resizePolicy",
		"spec.initContainers[0].restartPolicy",
		"spec.ephemeralContainers[0].restartPolicy",
		"spec.containers[0].lifecycle.preStop.sleep",
		"spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.matchLabelKeys",
		"spec.volumes[0].projected.sources[1].clusterTrustBundle",
		"spec.securityContext.appArmorProfile",
		"spec.containers[0].volumeMounts[0].recursiveReadOnly",
		"spec.volumes[1].image",
		"spec.containers[0].lifecycle.stopSignal",
		"spec.containers[0].env[1].valueFrom.fileKeyRef",
		"spec.topologySpreadConstraints[0].minDomains",
	}
	slices.Sort(paths)
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Fatalf("dropped\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	if s.RestartPolicy != corev1.RestartPolicyAlways || *s.SecurityContext.RunAsUser != 1000 ||
		s.Containers[0].LivenessProbe.PeriodSeconds != 3 || s.InitContainers[0].Name != "side" ||
		len(s.Containers[0].Env) != 2 || s.Volumes[0].Projected.Sources[0].ConfigMap == nil {
		t.Fatalf("fields 1.19 knows were changed: %s", out)
	}
	if !strings.Contains(string(out), "9007199254740993") {
		t.Fatalf("numbers changed: %s", out)
	}
	// Nothing to drop: the body is forwarded byte for byte.
	plain := []byte(`{"spec": {"containers": [{"name": "a"}]}}`)
	if out, dropped := podBodyFor119("application/json; charset=utf-8", plain); string(out) != string(plain) || dropped != nil {
		t.Fatalf("unchanged body: %s %v", out, dropped)
	}
	// YAML and protobuf bodies pass as they are.
	if _, dropped := podBodyFor119("application/vnd.kubernetes.protobuf", []byte(pod)); dropped != nil {
		t.Fatal("a protobuf body was decoded")
	}
}

func TestPodPatchesDropNewerFields(t *testing.T) {
	merge := `{"spec":{"initContainers":[{"name":"side","restartPolicy":"Always"}],"$setElementOrder/initContainers":[{"name":"side"}]}}`
	out, dropped := podBodyFor119("application/strategic-merge-patch+json", []byte(merge))
	if len(dropped) != 1 || dropped[0].Path != "spec.initContainers[0].restartPolicy" || strings.Contains(string(out), "restartPolicy") {
		t.Fatalf("merge patch: %s %v", out, dropped)
	}
	patch := `[{"op":"add","path":"/spec/initContainers/-","value":{"name":"s","restartPolicy":"Always","image":"i"}},
	  {"op":"replace","path":"/spec/containers/0/resizePolicy","value":[]},
	  {"op":"add","path":"/spec/os","value":{"name":"linux"}},
	  {"op":"replace","path":"/spec/containers/0/image","value":"j"}]`
	out, dropped = podBodyFor119("application/json-patch+json", []byte(patch))
	var ops []map[string]any
	if err := json.Unmarshal(out, &ops); err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 3 || len(ops) != 2 || ops[1]["path"] != "/spec/containers/0/image" ||
		strings.Contains(string(out), "restartPolicy") {
		t.Fatalf("JSON patch: %s %v", out, dropped)
	}
}

func TestImportBodies(t *testing.T) {
	body := func(mutate func(m map[string]any)) []byte {
		m := map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
			"metadata": map[string]any{"name": "data", "annotations": map[string]any{"fsType": "nfs",
				"volumeID": "fs-1", "deviceMountPath": "sfs-nas01.testbed.local:/share-1"}},
			"spec": map[string]any{"storageClassName": "nfs-rw",
				"resources": map[string]any{"requests": map[string]any{"storage": "10Gi"}}}}
		if mutate != nil {
			mutate(m)
		}
		data, _ := json.Marshal(m)
		return data
	}
	meta := func(m map[string]any) map[string]any { return m["metadata"].(map[string]any) }
	annotations := func(m map[string]any) map[string]any { return meta(m)["annotations"].(map[string]any) }
	spec := func(m map[string]any) map[string]any { return m["spec"].(map[string]any) }
	req, e := parseImport(body(nil), "ns")
	if e != nil || req.VolumeID != "fs-1" || req.AccessModes[0] != corev1.ReadWriteMany || req.Storage.String() != "10Gi" {
		t.Fatalf("valid body: %v %+v", e, req)
	}
	cases := map[string]struct {
		mutate func(map[string]any)
		code   string
	}{
		"not JSON":               {nil, cciImportBodyError},
		"kind":                   {func(m map[string]any) { m["kind"] = "Pod" }, cciImportBodyError},
		"no name":                {func(m map[string]any) { delete(meta(m), "name") }, cciImportBodyError},
		"other namespace":        {func(m map[string]any) { meta(m)["namespace"] = "other" }, cciImportBodyError},
		"no fsType":              {func(m map[string]any) { delete(annotations(m), "fsType") }, cciImportBodyError},
		"no volumeID":            {func(m map[string]any) { delete(annotations(m), "volumeID") }, cciImportBodyError},
		"long volumeID":          {func(m map[string]any) { annotations(m)["volumeID"] = strings.Repeat("a", 65) }, cciVolumeIDTooLong},
		"no deviceMountPath":     {func(m map[string]any) { delete(annotations(m), "deviceMountPath") }, cciImportBodyError},
		"deviceMountPath format": {func(m map[string]any) { annotations(m)["deviceMountPath"] = "share-1" }, cciImportBodyError},
		"no class":               {func(m map[string]any) { delete(spec(m), "storageClassName") }, cciImportBodyError},
		"nfs with class nfs":     {func(m map[string]any) { spec(m)["storageClassName"] = "nfs" }, cciNFSClass},
		"nfs with class ssd":     {func(m map[string]any) { spec(m)["storageClassName"] = "ssd" }, cciNFSClass},
		"ext4 with nfs-rw":       {func(m map[string]any) { annotations(m)["fsType"] = "ext4" }, cciImportBodyError},
		"no storage":             {func(m map[string]any) { delete(spec(m), "resources") }, cciImportBodyError},
		"bad storage": {func(m map[string]any) {
			spec(m)["resources"] = map[string]any{"requests": map[string]any{"storage": "lots"}}
		}, cciImportBodyError},
		"bad access mode": {func(m map[string]any) { spec(m)["accessModes"] = []string{"All"} }, cciImportBodyError},
	}
	for name, c := range cases {
		data := body(c.mutate)
		if name == "not JSON" {
			data = []byte("{")
		}
		if _, e := parseImport(data, "ns"); e == nil || e.ErrorCode != c.code || e.Code != http.StatusBadRequest {
			t.Errorf("%s: %v, want %s", name, e, c.code)
		}
	}
	sfs := &FileSystem{ID: "fs-1", Type: FileSystemSFS, SharePath: "sfs-nas01.testbed.local:/share-1"}
	if e := checkRecord(req, sfs); e != nil {
		t.Fatalf("matching record: %v", e)
	}
	if e := checkRecord(req, nil); e == nil || e.ErrorCode != cciVolumeNotFound {
		t.Errorf("no record: %v", e)
	}
	turbo := *sfs
	turbo.Type = FileSystemSFSTurbo
	if e := checkRecord(req, &turbo); e == nil || e.ErrorCode != cciVolumeUnavailable {
		t.Errorf("SFS Turbo record with nfs-rw: %v", e)
	}
	other := *sfs
	other.SharePath = "sfs-nas01.testbed.local:/share-2"
	if e := checkRecord(req, &other); e == nil || e.ErrorCode != cciVolumeUnavailable {
		t.Errorf("another share path: %v", e)
	}
	evs, _ := parseImport(body(func(m map[string]any) {
		annotations(m)["fsType"] = "ext4"
		spec(m)["storageClassName"] = "ssd"
	}), "ns")
	if e := checkRecord(evs, sfs); e == nil || e.ErrorCode != cciVolumeUnavailable {
		t.Errorf("an EVS import of a file system: %v", e)
	}
}

func TestImportUnbindAndDestroy(t *testing.T) {
	ctx := context.Background()
	g, srv, cs := testGateway(t, http.NotFoundHandler(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}})
	if err := CreateFileSystem(ctx, cs, FileSystem{ID: "fs-1", Type: FileSystemSFSTurbo, SharePath: "192.168.0.10:/"}); err != nil {
		t.Fatal(err)
	}
	if err := CreateFileSystem(ctx, cs, FileSystem{ID: "Bad_ID", Type: FileSystemSFS, SharePath: "a:/"}); err == nil {
		t.Fatal("a record with a bad ID")
	}
	imp := `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","labels":{"app":"a"},
	  "annotations":{"fsType":"nfs","volumeID":"fs-1","deviceMountPath":"192.168.0.10:/"}},
	  "spec":{"storageClassName":"efs-standard","resources":{"requests":{"storage":"1Gi"}}}}`
	path := "/api/v1/namespaces/ns/extended-persistentvolumeclaims"
	code, body := send(t, srv, "e2e", "POST", path, "application/json", imp)
	if code != http.StatusCreated {
		t.Fatalf("import: %d %s", code, body)
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.Labels["app"] != "a" || pvc.Annotations["kubernetes.io/volumeId"] != "fs-1" ||
		pvc.Spec.VolumeName != "cci-import-fs-1" || pvc.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Fatalf("claim: %v %+v", err, pvc)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, "cci-import-fs-1", metav1.GetOptions{})
	if err != nil || pv.Spec.NFS.Server != "192.168.0.10" || pv.Spec.NFS.Path != "/" ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.ClaimRef.Name != "data" {
		t.Fatalf("PV: %v %+v", err, pv)
	}
	if fs, _ := GetFileSystem(ctx, cs, "fs-1"); fs.BoundTo != "ns/data/"+string(pvc.UID) {
		t.Fatalf("record: %+v", fs)
	}
	if code, body := send(t, srv, "e2e", "POST", path, "application/json", strings.Replace(imp, `"name":"data"`, `"name":"again"`, 1)); code != 400 || errorCodeOf(t, body) != cciVolumeProvisioned {
		t.Fatalf("second import: %d %s", code, body)
	}
	for storageType, n := range map[string]int{"efs": 1, "nfs": 0, "": 0, "bs": 0} {
		code, body := send(t, srv, "e2e", "GET", path+"?storageType="+storageType, "", "")
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(body, &items); code != 200 || err != nil || len(items) != n {
			t.Fatalf("list %q: %d %s", storageType, code, body)
		}
		if n == 1 && (len(items[0]["persistentVolumeClaim"]) < 10 || len(items[0]["persistentVolume"]) < 10 || len(items[0]["storageInfo"]) < 10) {
			t.Fatalf("list item: %s", body)
		}
	}
	if code, body := send(t, srv, "e2e", "GET", path+"?storageType=efs2", "", ""); code != 400 || errorCodeOf(t, body) != cciStorageTypeInvalid {
		t.Fatalf("bad storageType: %d %s", code, body)
	}
	claim := "/api/v1/namespaces/ns/persistentvolumeclaims/data"
	for _, q := range []string{"?deleteVolume=false", "?deleteVolume=false&storageType=efs"} {
		if code, body := send(t, srv, "e2e", "DELETE", claim+q, "", ""); code != 400 || errorCodeOf(t, body) != cciStorageTypeInvalid {
			t.Fatalf("unbind %s: %d %s", q, code, body)
		}
	}
	if code, body := send(t, srv, "e2e", "DELETE", claim+"?deleteVolume=maybe", "", ""); code != 400 || errorCodeOf(t, body) != cciDeleteVolumeBad {
		t.Fatalf("deleteVolume=maybe: %d %s", code, body)
	}
	if code, body := send(t, srv, "e2e", "DELETE", claim+"?deleteVolume=false&storageType=nfs", "", ""); code != 200 || len(body) != 0 {
		t.Fatalf("unbind: %d %s", code, body)
	}
	if fs, err := GetFileSystem(ctx, cs, "fs-1"); err != nil || fs.BoundTo != "" {
		t.Fatalf("record after unbind: %v %+v", err, fs)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "data", metav1.GetOptions{}); err == nil {
		t.Fatal("the claim is still there")
	}
	// Imported again; the claim then goes another way: the file system goes with it.
	if code, body := send(t, srv, "e2e", "POST", path, "application/json", imp); code != http.StatusCreated {
		t.Fatalf("import after unbind: %d %s", code, body)
	}
	pvc, _ = cs.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "data", metav1.GetOptions{})
	g.claimGone(ctx, "fs-1", "ns/data/other-uid")
	if ok, _ := FileSystemExists(ctx, cs, "fs-1"); !ok {
		t.Fatal("destroyed for another claim's end")
	}
	g.claimGone(ctx, "fs-1", claimKey("ns", "data", pvc.UID))
	if ok, _ := FileSystemExists(ctx, cs, "fs-1"); ok {
		t.Fatal("the file system outlived its claim")
	}
	if code, body := send(t, srv, "e2e", "POST", path, "application/json", imp); code != 400 || errorCodeOf(t, body) != cciVolumeNotFound {
		t.Fatalf("import of a destroyed file system: %d %s", code, body)
	}
}
