package main

import "testing"

func TestRequestsBetween(t *testing.T) {
	before := map[string]float64{
		`burstlet_api_requests_total{verb="PATCH",code="200"}`:     5,
		`burstlet_backend_requests_total{verb="POST",code="201"}`:  1,
		`burstlet_backend_requests_total{verb="WATCH",code="200"}`: 4,
	}
	after := map[string]float64{
		`burstlet_api_requests_total{verb="PATCH",code="200"}`:           105,
		`burstlet_api_requests_total{verb="GET",code="200"}`:             7,
		`burstlet_api_requests_total{verb="DELETE",code="200"}`:          100,
		`burstlet_backend_requests_total{verb="POST",code="201"}`:        102,
		`burstlet_backend_requests_total{verb="POST",code="409"}`:        2,
		`burstlet_backend_requests_total{verb="DELETE",code="200"}`:      100,
		`burstlet_backend_requests_total{verb="LIST",code="200"}`:        3,
		`burstlet_backend_requests_total{verb="WATCH",code="200"}`:       4,
		`burstlet_backend_requests_total{verb="PUT",code="unavailable"}`: 1,
		`burstlet_pod_syncs_total{outcome="ok"}`:                         300,
	}
	r := requestsBetween(before, after, 100)
	if r.ClusterWrites != 200 || r.ClusterWritesPerPod != 2 {
		t.Errorf("cluster writes %v (%v per pod), want 200 (2)", r.ClusterWrites, r.ClusterWritesPerPod)
	}
	// POST 101 + 2 conflicts, DELETE 100, a PUT that got no answer; LIST and WATCH are reads.
	if r.BackendWrites != 204 || r.BackendWritesPerPod != 2.04 {
		t.Errorf("backend writes %v (%v per pod), want 204 (2.04)", r.BackendWrites, r.BackendWritesPerPod)
	}
	if r.Backend["POST 201"] != 101 || r.Backend["LIST 200"] != 3 || len(r.Backend) != 5 {
		t.Errorf("backend by verb %v", r.Backend)
	}
	if s := requestsBetween(nil, after, 100); s.BackendWrites != 205 {
		t.Errorf("since start: %v backend writes, want 205", s.BackendWrites)
	}
}
