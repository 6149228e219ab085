package testbed

import (
	"fmt"
	"strings"

	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

// kwok's pod stages the testbed adds to its defaults (plane.go writes them into kwok's --config):
// exits and restarts on request, slow deletion, and ephemeral containers.

// ExitCodeAnnotation makes a running kwok pod's containers exit with this code, as a kubelet
// would then handle it by the pod's restartPolicy: with Never (or OnFailure and "0") the pod ends
// (phase Succeeded for "0", Failed otherwise); with Always (or OnFailure and another code) the
// containers run again once, restartCount 1 and the exit in lastState. kwok runs no containers,
// so run-to-completion pods (Jobs) need it to finish; on the backend plane it stands for a
// container that exits.
const ExitCodeAnnotation = "testbed.burstlet.io/exit-code"

// DeleteDelayAnnotation makes kwok finish a terminating pod only after this long (a Go
// duration, "20s"), standing for containers that take their grace period to stop; "never"
// keeps the pod terminating until a delete with grace 0 removes it.
const DeleteDelayAnnotation = "testbed.burstlet.io/delete-delay"

// HoldExitAnnotation keeps a Job's pod Running on a kwok node until ExitCodeAnnotation says how
// its containers exited (kwok's own pod-complete stage ends every Job's pod Succeeded at once).
// For a Job whose container a test runs itself (tests/helm_release_test.go: the chart's uninstall
// hook, whose exit helm waits for).
const HoldExitAnnotation = "testbed.burstlet.io/hold-exit"

// podCompleteStage is kwok's pod-complete stage for the Job pods without HoldExitAnnotation.
var podCompleteStage = withSelectorTerm(podfast.DefaultPodComplete,
	`    - key: '.metadata.annotations["`+HoldExitAnnotation+`"]'
      operator: 'DoesNotExist'
`)

// withSelectorTerm adds a term to a kwok stage's selector. A stage without its one
// matchExpressions list (a kwok release that changed the layout) stops the testbed at once.
func withSelectorTerm(stage, term string) string {
	const list = "\n    matchExpressions:\n"
	if strings.Count(stage, list) != 1 {
		panic("testbed: kwok stage without one selector.matchExpressions list:\n" + stage)
	}
	return strings.Replace(stage, list, list+term, 1)
}

// podDeleteStage is kwok's fast pod-delete stage, for pods without DeleteDelayAnnotation.
const podDeleteStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '.metadata.annotations["` + DeleteDelayAnnotation + `"]'
      operator: 'DoesNotExist'
  next:
    delete: true
`

// podSlowDeleteStage deletes a terminating pod with DeleteDelayAnnotation after that delay.
const podSlowDeleteStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete-slow
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '.metadata.annotations["` + DeleteDelayAnnotation + `"]'
      operator: 'Exists'
    - key: '.metadata.annotations["` + DeleteDelayAnnotation + `"]'
      operator: 'NotIn'
      values:
      - 'never'
  delay:
    durationFrom:
      expressionFrom: '.metadata.annotations["` + DeleteDelayAnnotation + `"]'
  next:
    delete: true
`

// exitStageHead opens a pod Stage named `name` whose selector holds for a Running pod that is
// not being deleted and has ExitCodeAnnotation: the terms the exit stages share (theirs follow).
func exitStageHead(name string) string {
	return `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ` + name + `
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.annotations["` + ExitCodeAnnotation + `"]'
      operator: 'Exists'
`
}

// exitsForGood is the selector term of an exit the pod's restartPolicy does not follow with a
// restart.
const exitsForGood = `    - key: '.spec.restartPolicy == "Never" or (.spec.restartPolicy == "OnFailure" and .metadata.annotations["` + ExitCodeAnnotation + `"] == "0")'
      operator: 'In'
      values:
      - 'true'
`

// withInjectedProxy is the selector term: the pod runs burstlet's network proxy sidecar, or not.
func withInjectedProxy(present bool) string {
	return `    - key: '` + hasInjectedProxy + `'
      operator: 'In'
      values:
      - '` + fmt.Sprint(present) + `'
`
}

// exitStatusHead is the stages' delay and the start of their status template, up to each
// container's name: $now, $code (ExitCodeAnnotation) and the range over the containers.
const exitStatusHead = `  delay:
    durationMilliseconds: 500
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := index .metadata.annotations "` + ExitCodeAnnotation + `" }}
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
`

// terminated is a container's status lines of an exit with these template expressions.
func terminated(exitCode, reason string) string {
	return `        state:
          terminated:
            exitCode: ` + exitCode + `
            finishedAt: {{ $now | Quote }}
            reason: ` + reason + `
            startedAt: {{ $now | Quote }}
`
}

const (
	exitReason = `{{ if eq $code "0" }}Completed{{ else }}Error{{ end }}`
	exitPhase  = `      phase: {{ if eq $code "0" }}Succeeded{{ else }}Failed{{ end }}
`
	notRunning = `        ready: false
        restartCount: 0
        started: false
`
)

var podExitStage = exitStageHead("pod-exit") + exitsForGood + withInjectedProxy(false) +
	exitStatusHead + notRunning + terminated("{{ $code }}", exitReason) + "      {{ end }}\n" + exitPhase

// hasInjectedProxy is a kwok selector key: whether the pod runs burstlet's network proxy sidecar.
const hasInjectedProxy = `(.spec.containers | map(select(.name == "burstlet-netproxy")) | length > 0)`

// InjectedStopAnnotation is what burstlet sets on a backend pod once the pod's own containers
// are done, for the injected proxy to exit (provider::kInjectedStopAnnotation).
const InjectedStopAnnotation = "burstlet.io/injected-stop"

// podExitBesideProxyStage is pod-exit for a pod with burstlet's proxy sidecar (a Job's pod with
// the network proxy on): the pod's own containers exit with ExitCodeAnnotation's code while the
// sidecar runs on and the pod stays Running, until burstlet sets InjectedStopAnnotation;
// podProxyStopStage then stands in for the sidecar reading it (kwok runs nothing) and exiting 0,
// and the pod ends as its own containers did.
var podExitBesideProxyStage = exitStageHead("pod-exit-beside-proxy") +
	`    - key: '.metadata.annotations["` + InjectedStopAnnotation + `"]'
      operator: 'DoesNotExist'
    - key: '(.status.containerStatuses // []) | map(select(.name != "burstlet-netproxy" and .state.terminated != null)) | length'
      operator: 'In'
      values:
      - '0'
` + exitsForGood + withInjectedProxy(true) + exitStatusHead + `        restartCount: 0
      {{ if eq $item.name "burstlet-netproxy" }}
        ready: true
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ else }}
        ready: false
        started: false
` + terminated("{{ $code }}", exitReason) + `      {{ end }}
      {{ end }}
      phase: Running
`

var podProxyStopStage = exitStageHead("pod-proxy-stop") +
	`    - key: '.metadata.annotations["` + InjectedStopAnnotation + `"]'
      operator: 'In'
      values:
      - 'true'
` + exitStatusHead + notRunning +
	terminated(`{{ if eq $item.name "burstlet-netproxy" }}0{{ else }}{{ $code }}{{ end }}`,
		`{{ if or (eq $item.name "burstlet-netproxy") (eq $code "0") }}Completed{{ else }}Error{{ end }}`) +
	"      {{ end }}\n" + exitPhase

// podRestartStage restarts the containers of a pod with ExitCodeAnnotation whose restartPolicy
// runs them again, once: Running, ready, restartCount 1, the exit in lastState.
const podRestartStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-restart
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.annotations["` + ExitCodeAnnotation + `"]'
      operator: 'Exists'
    - key: '.spec.restartPolicy == "Always" or (.spec.restartPolicy == "OnFailure" and .metadata.annotations["` + ExitCodeAnnotation + `"] != "0")'
      operator: 'In'
      values:
      - 'true'
    - key: '.status.containerStatuses[0].lastState.terminated'
      operator: 'DoesNotExist'
  delay:
    durationMilliseconds: 500
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := index .metadata.annotations "` + ExitCodeAnnotation + `" }}
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: true
        restartCount: 1
        started: true
        lastState:
          terminated:
            exitCode: {{ $code }}
            finishedAt: {{ $now | Quote }}
            reason: {{ if eq $code "0" }}Completed{{ else }}Error{{ end }}
            startedAt: {{ $now | Quote }}
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
`

// podEphemeralStage runs the ephemeral containers (kubectl debug) of a Running pod: kwok's own
// stages set no status for them. It matches while a container of spec.ephemeralContainers has no
// status yet. kwok applies a statusTemplate as a strategic merge patch of the status subresource,
// which replaces only the lists it names (container status lists have no merge key): the
// containerStatuses and conditions the other stages wrote stay as they are. Containers that had
// a status keep their startedAt.
const podEphemeralStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ephemeral-containers
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '([.spec.ephemeralContainers[]?.name] - [.status.ephemeralContainerStatuses[]?.name]) | length > 0'
      operator: 'In'
      values:
      - 'true'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $status := .status }}
      ephemeralContainerStatuses:
      {{ range $c := .spec.ephemeralContainers }}
      {{ $started := $now }}
      {{ range $status.ephemeralContainerStatuses }}
      {{ if eq .name $c.name }}{{ with .state }}{{ with .running }}{{ $started = .startedAt }}{{ end }}{{ end }}{{ end }}
      {{ end }}
      - image: {{ $c.image | Quote }}
        name: {{ $c.name | Quote }}
        ready: false
        restartCount: 0
        state:
          running:
            startedAt: {{ $started | Quote }}
      {{ end }}
`
