package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// newerPodField is a Pod field Kubernetes 1.19 (CCI's API) does not have, with the minor release
// that added it. A "[]" after a segment descends into every element of that list.
type newerPodField struct {
	minor int
	path  string
}

// newerPodFields: every Pod field added after 1.19 (the table of src/provider/cci/api_fields.cc,
// compared on k8s.io/api core/v1 tag by tag). Sub-fields of a field added in the same release go
// with it and are not listed.
var newerPodFields = []newerPodField{
	// 1.21: PodAffinityTerm.NamespaceSelector
	{21, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[].namespaceSelector"},
	{21, "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm.namespaceSelector"},
	{21, "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[].namespaceSelector"},
	{21, "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm.namespaceSelector"},
	// 1.21: Probe.TerminationGracePeriodSeconds
	{21, "spec.containers[].livenessProbe.terminationGracePeriodSeconds"},
	{21, "spec.containers[].readinessProbe.terminationGracePeriodSeconds"},
	{21, "spec.containers[].startupProbe.terminationGracePeriodSeconds"},
	{21, "spec.initContainers[].livenessProbe.terminationGracePeriodSeconds"},
	{21, "spec.initContainers[].readinessProbe.terminationGracePeriodSeconds"},
	{21, "spec.initContainers[].startupProbe.terminationGracePeriodSeconds"},
	{21, "spec.ephemeralContainers[].livenessProbe.terminationGracePeriodSeconds"},
	{21, "spec.ephemeralContainers[].readinessProbe.terminationGracePeriodSeconds"},
	{21, "spec.ephemeralContainers[].startupProbe.terminationGracePeriodSeconds"},
	// 1.22: WindowsSecurityContextOptions.HostProcess
	{22, "spec.securityContext.windowsOptions.hostProcess"},
	{22, "spec.containers[].securityContext.windowsOptions.hostProcess"},
	{22, "spec.initContainers[].securityContext.windowsOptions.hostProcess"},
	{22, "spec.ephemeralContainers[].securityContext.windowsOptions.hostProcess"},
	// 1.22: PersistentVolumeClaimSpec.DataSourceRef
	{22, "spec.volumes[].ephemeral.volumeClaimTemplate.spec.dataSourceRef"},
	// 1.23: ProbeHandler.GRPC
	{23, "spec.containers[].livenessProbe.grpc"},
	{23, "spec.containers[].readinessProbe.grpc"},
	{23, "spec.containers[].startupProbe.grpc"},
	{23, "spec.initContainers[].livenessProbe.grpc"},
	{23, "spec.initContainers[].readinessProbe.grpc"},
	{23, "spec.initContainers[].startupProbe.grpc"},
	{23, "spec.ephemeralContainers[].livenessProbe.grpc"},
	{23, "spec.ephemeralContainers[].readinessProbe.grpc"},
	{23, "spec.ephemeralContainers[].startupProbe.grpc"},
	// 1.23: PodSpec.OS
	{23, "spec.os"},
	// 1.24: TopologySpreadConstraint.MinDomains
	{24, "spec.topologySpreadConstraints[].minDomains"},
	// 1.25: PodSpec.HostUsers
	{25, "spec.hostUsers"},
	// 1.25: TopologySpreadConstraint.MatchLabelKeys, NodeAffinityPolicy, NodeTaintsPolicy
	{25, "spec.topologySpreadConstraints[].matchLabelKeys"},
	{25, "spec.topologySpreadConstraints[].nodeAffinityPolicy"},
	{25, "spec.topologySpreadConstraints[].nodeTaintsPolicy"},
	// 1.26: PodSpec.SchedulingGates
	{26, "spec.schedulingGates"},
	// 1.26: PodSpec.ResourceClaims
	{26, "spec.resourceClaims"},
	// 1.26: ResourceRequirements.Claims (PVC templates: 1.26 to 1.28)
	{26, "spec.containers[].resources.claims"},
	{26, "spec.initContainers[].resources.claims"},
	{26, "spec.ephemeralContainers[].resources.claims"},
	{26, "spec.volumes[].ephemeral.volumeClaimTemplate.spec.resources.claims"},
	// 1.27: Container.ResizePolicy
	{27, "spec.containers[].resizePolicy"},
	{27, "spec.initContainers[].resizePolicy"},
	{27, "spec.ephemeralContainers[].resizePolicy"},
	// 1.28: Container.RestartPolicy (native sidecars)
	{28, "spec.containers[].restartPolicy"},
	{28, "spec.initContainers[].restartPolicy"},
	{28, "spec.ephemeralContainers[].restartPolicy"},
	// 1.29: LifecycleHandler.Sleep
	{29, "spec.containers[].lifecycle.postStart.sleep"},
	{29, "spec.containers[].lifecycle.preStop.sleep"},
	{29, "spec.initContainers[].lifecycle.postStart.sleep"},
	{29, "spec.initContainers[].lifecycle.preStop.sleep"},
	{29, "spec.ephemeralContainers[].lifecycle.postStart.sleep"},
	{29, "spec.ephemeralContainers[].lifecycle.preStop.sleep"},
	// 1.29: PodAffinityTerm.MatchLabelKeys, MismatchLabelKeys
	{29, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[].matchLabelKeys"},
	{29, "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm.matchLabelKeys"},
	{29, "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[].matchLabelKeys"},
	{29, "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm.matchLabelKeys"},
	{29, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[].mismatchLabelKeys"},
	{29, "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm.mismatchLabelKeys"},
	{29, "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[].mismatchLabelKeys"},
	{29, "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm.mismatchLabelKeys"},
	// 1.29: PersistentVolumeClaimSpec.VolumeAttributesClassName
	{29, "spec.volumes[].ephemeral.volumeClaimTemplate.spec.volumeAttributesClassName"},
	// 1.29: VolumeProjection.ClusterTrustBundle
	{29, "spec.volumes[].projected.sources[].clusterTrustBundle"},
	// 1.30: PodSecurityContext and SecurityContext.AppArmorProfile
	{30, "spec.securityContext.appArmorProfile"},
	{30, "spec.containers[].securityContext.appArmorProfile"},
	{30, "spec.initContainers[].securityContext.appArmorProfile"},
	{30, "spec.ephemeralContainers[].securityContext.appArmorProfile"},
	// 1.30: VolumeMount.RecursiveReadOnly
	{30, "spec.containers[].volumeMounts[].recursiveReadOnly"},
	{30, "spec.initContainers[].volumeMounts[].recursiveReadOnly"},
	{30, "spec.ephemeralContainers[].volumeMounts[].recursiveReadOnly"},
	// 1.31: PodSecurityContext.SupplementalGroupsPolicy
	{31, "spec.securityContext.supplementalGroupsPolicy"},
	// 1.31: VolumeSource.Image
	{31, "spec.volumes[].image"},
	// 1.32: PodSpec.Resources (pod-level resources)
	{32, "spec.resources"},
	// 1.32: PodSecurityContext.SELinuxChangePolicy
	{32, "spec.securityContext.seLinuxChangePolicy"},
	// 1.33: Lifecycle.StopSignal
	{33, "spec.containers[].lifecycle.stopSignal"},
	{33, "spec.initContainers[].lifecycle.stopSignal"},
	{33, "spec.ephemeralContainers[].lifecycle.stopSignal"},
	// 1.34: Container.RestartPolicyRules
	{34, "spec.containers[].restartPolicyRules"},
	{34, "spec.initContainers[].restartPolicyRules"},
	{34, "spec.ephemeralContainers[].restartPolicyRules"},
	// 1.34: EnvVarSource.FileKeyRef
	{34, "spec.containers[].env[].valueFrom.fileKeyRef"},
	{34, "spec.initContainers[].env[].valueFrom.fileKeyRef"},
	{34, "spec.ephemeralContainers[].env[].valueFrom.fileKeyRef"},
	// 1.34: PodSpec.HostnameOverride
	{34, "spec.hostnameOverride"},
	// 1.34: VolumeProjection.PodCertificate
	{34, "spec.volumes[].projected.sources[].podCertificate"},
	// 1.35: PodSpec.WorkloadRef (1.35 only)
	{35, "spec.workloadRef"},
	// 1.36: PodSpec.SchedulingGroup
	{36, "spec.schedulingGroup"},
}

// podFieldPatterns are the paths of newerPodFields as tokens: keys, and "*" for any list element.
var podFieldPatterns = func() [][]string {
	out := make([][]string, len(newerPodFields))
	for i, f := range newerPodFields {
		for _, seg := range strings.Split(f.path, ".") {
			if key, ok := strings.CutSuffix(seg, "[]"); ok {
				out[i] = append(out[i], key, "*")
			} else {
				out[i] = append(out[i], seg)
			}
		}
	}
	return out
}()

// droppedField is a field dropped from a body: its concrete path and the release that added it.
type droppedField struct {
	Path  string
	Minor int
}

func (d droppedField) String() string { return fmt.Sprintf("%s (Kubernetes 1.%d)", d.Path, d.Minor) }

// dropNewerPodFields removes from a decoded pod (or a merge patch of one) every field of
// newerPodFields, as a 1.19 API server drops fields it does not know, and says which it removed
// (null values are removed without a word).
func dropNewerPodFields(pod any) []droppedField {
	var out []droppedField
	for i, pattern := range podFieldPatterns {
		dropAt(pod, pattern, "", newerPodFields[i].minor, &out)
	}
	return out
}

func joinPath(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// dropAt walks pattern from v (whose path is at) and deletes the field it ends in.
func dropAt(v any, pattern []string, at string, minor int, out *[]droppedField) {
	if len(pattern) == 0 {
		return
	}
	if pattern[0] == "*" {
		list, _ := v.([]any)
		for i, elem := range list {
			dropAt(elem, pattern[1:], fmt.Sprintf("%s[%d]", at, i), minor, out)
		}
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	child, ok := obj[pattern[0]]
	if !ok {
		return
	}
	if len(pattern) == 1 {
		delete(obj, pattern[0])
		if child != nil {
			*out = append(*out, droppedField{Path: joinPath(at, pattern[0]), Minor: minor})
		}
		return
	}
	dropAt(child, pattern[1:], joinPath(at, pattern[0]), minor, out)
}

// pointerTokens splits a JSON pointer ("/spec/containers/0/resizePolicy").
func pointerTokens(pointer string) []string {
	if pointer == "" || pointer == "/" {
		return nil
	}
	tokens := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, t := range tokens {
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return tokens
}

// tokensPath is the dotted path of pointer tokens (list indexes as [i]).
func tokensPath(tokens []string) string {
	at := ""
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil || t == "-" {
			at += "[" + t + "]"
		} else {
			at = joinPath(at, t)
		}
	}
	return at
}

// dropNewerPatchOps removes from a JSON patch (RFC 6902) of a pod the operations on a field of
// newerPodFields (or below one), and the newer fields inside the values of operations on a
// parent of one.
func dropNewerPatchOps(ops []any) ([]any, []droppedField) {
	var out []droppedField
	kept := ops[:0:0]
	for _, o := range ops {
		op, _ := o.(map[string]any)
		pointer, _ := op["path"].(string)
		tokens := pointerTokens(pointer)
		drop := false
		for i, pattern := range podFieldPatterns {
			n := 0
			for n < len(pattern) && n < len(tokens) && tokenMatches(pattern[n], tokens[n]) {
				n++
			}
			switch {
			case n == len(pattern):
				drop = true
				out = append(out, droppedField{Path: tokensPath(tokens), Minor: newerPodFields[i].minor})
			case n == len(tokens) && op["value"] != nil:
				dropAt(op["value"], pattern[n:], tokensPath(tokens), newerPodFields[i].minor, &out)
			}
			if drop {
				break
			}
		}
		if !drop {
			kept = append(kept, o)
		}
	}
	return kept, out
}

func tokenMatches(pattern, token string) bool {
	if pattern == "*" {
		_, err := strconv.Atoi(token)
		return err == nil || token == "-"
	}
	return pattern == token
}

// podBodyFor119 drops the newer pod fields from a request body of this content type: a pod
// (JSON), a JSON merge or strategic merge patch (the same paths), or a JSON patch (operations on
// those paths). Other bodies (YAML, protobuf, apply patches) and bodies that are not valid JSON
// are returned as they are; so is a body with nothing to drop.
func podBodyFor119(contentType string, body []byte) ([]byte, []droppedField) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch mediaType {
	case "", "application/json", "application/merge-patch+json", "application/strategic-merge-patch+json",
		"application/json-patch+json":
	default:
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return body, nil
	}
	var dropped []droppedField
	if ops, ok := doc.([]any); ok && mediaType == "application/json-patch+json" {
		doc, dropped = dropNewerPatchOps(ops)
	} else {
		dropped = dropNewerPodFields(doc)
	}
	if len(dropped) == 0 {
		return body, nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return body, nil
	}
	return out, dropped
}
