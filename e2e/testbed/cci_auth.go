package testbed

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Huawei Cloud API Gateway request signing (SDK-HMAC-SHA256), as the gateway checks it:
//
//	Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<names>, Signature=<hex>
//	X-Sdk-Date:    20191115T033655Z
//
// signature = hex(HMAC-SHA256(SK, "SDK-HMAC-SHA256\n" + date + "\n" + hex(sha256(canonical))))
// canonical = method \n canonical URI \n canonical query \n canonical headers \n signed names \n
// hex(sha256(body)); X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD stands for the body hash (the
// official SDK sends it for bodies that are not JSON).
const (
	sdkSigningAlgorithm = "SDK-HMAC-SHA256"
	sdkDateHeader       = "X-Sdk-Date"
	sdkDateFormat       = "20060102T150405Z"
	sdkContentSHA256    = "X-Sdk-Content-Sha256"
	unsignedPayload     = "UNSIGNED-PAYLOAD"
	authTokenHeader     = "X-Auth-Token"
	// maxClockSkew is how far X-Sdk-Date may be from the gateway's clock.
	maxClockSkew = 15 * time.Minute
	// maxSignedBody bounds the body read to check a signature.
	maxSignedBody = 32 << 20
)

// authFailure is why a request is not authenticated: the APIG message (never a secret).
type authFailure struct {
	code    int
	message string
}

func (f *authFailure) Error() string { return f.message }

func unauthorized(detail string) *authFailure {
	return &authFailure{code: http.StatusUnauthorized, message: "Incorrect IAM authentication information: " + detail}
}

// authenticate finds the account a request comes from: X-Auth-Token, else an SDK-HMAC-SHA256
// signature over the request and its body. A signed request's body is read and put back.
func authenticate(r *http.Request, accounts []CCIAccount, now time.Time) (*CCIAccount, *authFailure) {
	if token := r.Header.Get(authTokenHeader); token != "" {
		for i := range accounts {
			if subtle.ConstantTimeCompare([]byte(token), []byte(accounts[i].Token)) == 1 {
				return &accounts[i], nil
			}
		}
		return nil, unauthorized("decrypt token fail")
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, unauthorized("x-auth-token not found")
	}
	sig, err := parseSDKAuthorization(auth)
	if err != nil {
		return nil, unauthorized("verify aksk signature fail, " + err.Error())
	}
	var acct *CCIAccount
	for i := range accounts {
		if subtle.ConstantTimeCompare([]byte(sig.access), []byte(accounts[i].AccessKey)) == 1 {
			acct = &accounts[i]
		}
	}
	if acct == nil {
		return nil, unauthorized("Get secretKey failed, err: ak not exist")
	}
	date := r.Header.Get(sdkDateHeader)
	t, err := time.Parse(sdkDateFormat, date)
	if err != nil {
		return nil, unauthorized("verify aksk signature fail, x-sdk-date missing or not like 20191115T033655Z")
	}
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return nil, unauthorized("verify aksk signature fail, x-sdk-date is more than 15 minutes off the server time")
	}
	body, err := readBody(r, maxSignedBody)
	if err != nil {
		return nil, &authFailure{code: http.StatusRequestEntityTooLarge, message: err.Error()}
	}
	payload := r.Header.Get(sdkContentSHA256)
	if payload != unsignedPayload {
		payload = sha256Hex(body)
	}
	want := sdkSignature(acct.SecretKey, date, canonicalRequest(r, sig.signedHeaders, payload))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(sig.signature))) {
		return nil, unauthorized("verify aksk signature fail")
	}
	return acct, nil
}

// readBody reads r's body (up to limit bytes) and puts it back for whoever forwards the request.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	_ = r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("request body larger than %d bytes", limit)
	}
	setBody(r, data)
	return data, nil
}

func setBody(r *http.Request, data []byte) {
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.ContentLength = int64(len(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

type sdkAuthorization struct {
	access        string
	signedHeaders []string
	signature     string
}

// parseSDKAuthorization reads "SDK-HMAC-SHA256 Access=..., SignedHeaders=a;b, Signature=...".
func parseSDKAuthorization(v string) (sdkAuthorization, error) {
	var a sdkAuthorization
	rest, ok := strings.CutPrefix(v, sdkSigningAlgorithm+" ")
	if !ok {
		return a, errors.New("the Authorization header is not " + sdkSigningAlgorithm)
	}
	for _, part := range strings.Split(rest, ",") {
		key, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch key {
		case "Access":
			a.access = value
		case "SignedHeaders":
			for _, h := range strings.Split(value, ";") {
				if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
					a.signedHeaders = append(a.signedHeaders, h)
				}
			}
		case "Signature":
			a.signature = value
		}
	}
	if a.access == "" || a.signature == "" {
		return a, errors.New("the Authorization header lacks Access or Signature")
	}
	return a, nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// sdkSignature is hex(HMAC-SHA256(sk, string to sign)).
func sdkSignature(secretKey, date, canonical string) string {
	toSign := sdkSigningAlgorithm + "\n" + date + "\n" + sha256Hex([]byte(canonical))
	mac := hmac.New(sha256.New, []byte(secretKey))
	mac.Write([]byte(toSign))
	return hex.EncodeToString(mac.Sum(nil))
}

// canonicalRequest of r over the signed header names (lowercase, in the order given).
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(canonicalURI(r.URL.EscapedPath()) + "\n")
	b.WriteString(canonicalQuery(r.URL.RawQuery) + "\n")
	for _, name := range signedHeaders {
		var values []string
		if name == "host" {
			values = []string{r.Host}
		} else {
			values = r.Header.Values(name)
		}
		trimmed := make([]string, 0, len(values))
		for _, v := range values {
			trimmed = append(trimmed, strings.TrimSpace(v))
		}
		sort.Strings(trimmed)
		for _, v := range trimmed {
			b.WriteString(name + ":" + v + "\n")
		}
	}
	b.WriteString("\n" + strings.Join(signedHeaders, ";") + "\n" + payloadHash)
	return b.String()
}

// canonicalURI: each path segment decoded and re-encoded with uriEscape, ending in "/".
func canonicalURI(escapedPath string) string {
	segments := strings.Split(escapedPath, "/")
	for i, s := range segments {
		segments[i] = uriEscape(percentDecode(s, false))
	}
	out := strings.Join(segments, "/")
	if !strings.HasSuffix(out, "/") {
		out += "/"
	}
	return out
}

// canonicalQuery: pairs decoded ('+' is a space), sorted by key then value, re-encoded with
// uriEscape and joined with '&'; a key without '=' has an empty value.
func canonicalQuery(rawQuery string) string {
	type pair struct{ k, v string }
	var pairs []pair
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		pairs = append(pairs, pair{percentDecode(k, true), percentDecode(v, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = uriEscape(p.k) + "=" + uriEscape(p.v)
	}
	return strings.Join(out, "&")
}

// uriEscape percent-encodes every byte but A-Z a-z 0-9 - _ . ~ (upper-case hex).
func uriEscape(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

// percentDecode undoes percent-encoding leniently: a '%' without two hex digits stays.
func percentDecode(s string, plusIsSpace bool) string {
	unhex := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		if plusIsSpace && c == '+' {
			c = ' '
		}
		b.WriteByte(c)
	}
	return b.String()
}
