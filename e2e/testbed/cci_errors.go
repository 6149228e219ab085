package testbed

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// CCI's error codes the gateway answers with (docs: CCI API reference, "Error Codes").
const (
	cciBodyError          = "CCI.01.400101" // request body error (also: a refused query parameter)
	cciNamespaceRequired  = "CCI.01.400102" // provide namespace requested
	cciImportBodyError    = "CCI.01.400106" // volume import:request body error
	cciStorageTypeInvalid = "CCI.01.400301" // storage type parameter invalid: nfs/obs/bs
	cciVolumeIDTooLong    = "CCI.01.400303" // storage volume id len invalid: no bigger than 64
	cciDeleteVolumeBad    = "CCI.01.400304" // storage request body invalid
	cciVolumeUnavailable  = "CCI.01.400305" // storage volume not available
	cciVolumeNotFound     = "CCI.01.400306" // storage volume is not found
	cciNFSClass           = "CCI.01.400307" // nfs storage class type err
	cciVolumeProvisioned  = "CCI.01.400309" // storage volume already provisioned
	cciNoRight            = "CCI.01.403104" // current user has no right
	cciNamespaceBodyError = "CCI.02.400101" // ummarshal ERROR: BadNamespaceRequestBody
	cciNamespaceQuota     = "CCI.02.400106" // used namespaces exceeds quota
	cciNamespaceExists    = "CCI.02.409101" // namespace name is already exist
	// apigAuthFailed is the API gateway's code for every authentication failure (HTTP 401).
	apigAuthFailed = "APIG.0301"
)

// apiError is an answer the gateway makes itself: a Kubernetes Status, with CCI's errorCode when
// ErrorCode is set.
type apiError struct {
	Code      int
	Reason    metav1.StatusReason
	ErrorCode string
	Message   string
}

func (e *apiError) Error() string { return e.Message }

func cciBadRequest(code, message string) *apiError {
	return &apiError{Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest, ErrorCode: code, Message: message}
}

func cciForbidden() *apiError {
	return &apiError{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, ErrorCode: cciNoRight,
		Message: "current user has no right"}
}

// notFound is Kubernetes' answer for a path it does not serve (no errorCode).
func notFound() *apiError {
	return &apiError{Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource"}
}

// cciErrorBody is e as CCI writes it: {"kind":"Status","apiVersion":"v1","metadata":{},
// "status":"Failure","message":...,"reason":...,"code":...,"errorCode":...}.
func cciErrorBody(e *apiError) []byte {
	body := struct {
		Kind       string              `json:"kind"`
		APIVersion string              `json:"apiVersion"`
		Metadata   struct{}            `json:"metadata"`
		Status     string              `json:"status"`
		Message    string              `json:"message"`
		Reason     metav1.StatusReason `json:"reason"`
		Details    *struct{}           `json:"details,omitempty"`
		Code       int                 `json:"code"`
		ErrorCode  string              `json:"errorCode,omitempty"`
	}{Kind: "Status", APIVersion: "v1", Status: metav1.StatusFailure, Message: e.Message, Reason: e.Reason,
		Code: e.Code, ErrorCode: e.ErrorCode}
	if e.ErrorCode == "" {
		body.Details = &struct{}{} // as Kubernetes writes its own NotFound
	}
	data, _ := json.Marshal(body) // cannot fail: strings and ints
	return data
}

// writeCCIError writes e (cciErrorBody) with its HTTP status: every error the gateway makes
// itself goes through here.
func writeCCIError(w http.ResponseWriter, e *apiError) {
	writeBody(w, e.Code, "application/json", cciErrorBody(e))
}

// writeAPIGError writes an API gateway error: {"error_code":..., "error_msg":..., "request_id":...}.
// Messages are fixed texts: never a key, a token or the Authorization header.
func writeAPIGError(w http.ResponseWriter, code int, errorCode, message string) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	writeJSON(w, code, map[string]string{"error_code": errorCode, "error_msg": message,
		"request_id": hex.EncodeToString(id)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeCCIError(w, &apiError{Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
			Message: "encoding the answer: " + err.Error()})
		return
	}
	writeBody(w, code, "application/json", data)
}

func writeBody(w http.ResponseWriter, code int, contentType string, data []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Del("Content-Encoding")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// upstreamMessage is the message of a Status the API server answered with (JSON or protobuf,
// possibly gzipped), or the body's text when it is not one.
func upstreamMessage(header http.Header, body []byte) string {
	if strings.EqualFold(header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				body = plain
			}
		}
	}
	var status metav1.Status
	if err := json.Unmarshal(body, &status); err == nil && status.Kind == "Status" {
		return status.Message
	}
	if obj, err := runtime.Decode(scheme.Codecs.UniversalDeserializer(), body); err == nil {
		if s, ok := obj.(*metav1.Status); ok {
			return s.Message
		}
	}
	return strings.TrimSpace(string(body))
}

// cciFromUpstream is how CCI answers what the API server answered with code: a 422 (validation
// or an admission policy's denial) is CCI's 400 CCI.01.400101 with the same message; nil for
// every other status, which passes unchanged.
func cciFromUpstream(code int, header http.Header, body []byte) *apiError {
	if code != http.StatusUnprocessableEntity {
		return nil
	}
	return cciBadRequest(cciBodyError, upstreamMessage(header, body))
}
