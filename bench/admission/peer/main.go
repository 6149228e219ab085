// Command peer is the admission benchmark's peer: the smallest useful mutating webhook, written
// with net/http and crypto/tls only. It answers every AdmissionReview v1 with allowed and an
// empty JSON patch, and counts the reviews it answered (GET /reviews). Measured through the API
// server, it is the floor of any webhook there: TLS, the review's round trip, and the API
// server's own work around a call.
package main

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve HTTPS on")
	cert := flag.String("cert", "", "serving certificate (PEM)")
	key := flag.String("key", "", "its key (PEM)")
	flag.Parse()

	var reviews atomic.Int64
	// An empty JSON patch: the API server still decodes and applies a patch, as it does for a
	// webhook that changes something, without this peer doing any work of its own.
	emptyPatch := base64.StdEncoding.EncodeToString([]byte("[]"))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mutate", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 3<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "not an AdmissionReview v1", http.StatusBadRequest)
			return
		}
		out := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",`+
			`"response":{"uid":%q,"allowed":true,"patchType":"JSONPatch","patch":%q}}`,
			review.Request.UID, emptyPatch)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, out)
		reviews.Add(1)
	})
	mux.HandleFunc("GET /reviews", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d\n", reviews.Load())
	})
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatalf("peer: %v", err)
	}
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	log.Printf("peer: serving https://%s/mutate", *listen)
	log.Fatal(srv.ListenAndServeTLS("", ""))
}
