package testbed

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// CCIGatewayName is the CCI gateway process (and its log, <state>/backend/<name>.log; its account
// files are in <state>/backend/<name>/).
const CCIGatewayName = "cci-gateway"

// CCIUnlimitedNamespaces as a CCIAccount's NamespaceQuota: the account may own any number of
// namespaces. 0 means none at all.
const CCIUnlimitedNamespaces = -1

// CCIAccount is one CCI account the gateway knows. Its keys and token never go into state.json:
// they are in the account's files (CCIGateway.Account reads them back).
type CCIAccount struct {
	Name string `json:"name"`
	// AccessKey and SecretKey sign requests (SDK-HMAC-SHA256); Token is an X-Auth-Token. Empty
	// ones are generated at `testbed up`.
	AccessKey string `json:"-"`
	SecretKey string `json:"-"`
	Token     string `json:"-"`
	// NamespaceQuota is how many namespaces (not terminating) the account may own;
	// CCIUnlimitedNamespaces for no limit.
	NamespaceQuota int `json:"namespaceQuota"`
}

// DefaultCCIAccounts: "e2e" with no namespace quota, and "full", whose quota (0) is used up.
func DefaultCCIAccounts() []CCIAccount {
	return []CCIAccount{{Name: "e2e", NamespaceQuota: CCIUnlimitedNamespaces}, {Name: "full", NamespaceQuota: 0}}
}

var accountNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ParseCCIAccount reads NAME=QUOTA (QUOTA a count, or "unlimited") into an account without keys.
func ParseCCIAccount(v string) (CCIAccount, error) {
	name, quota, ok := strings.Cut(v, "=")
	name = strings.TrimSpace(name)
	if !ok || !accountNameRE.MatchString(name) {
		return CCIAccount{}, fmt.Errorf("account %q: want NAME=QUOTA, NAME lowercase letters, digits and '-'", v)
	}
	a := CCIAccount{Name: name, NamespaceQuota: CCIUnlimitedNamespaces}
	if q := strings.TrimSpace(quota); q != "unlimited" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 {
			return CCIAccount{}, fmt.Errorf("account %q: QUOTA is a count of namespaces (0 or more) or \"unlimited\"", v)
		}
		a.NamespaceQuota = n
	}
	return a, nil
}

// String is the account as ParseCCIAccount reads it (no keys).
func (a CCIAccount) String() string {
	if a.NamespaceQuota < 0 {
		return a.Name + "=unlimited"
	}
	return fmt.Sprintf("%s=%d", a.Name, a.NamespaceQuota)
}

// CCIGateway is a running CCI gateway, as recorded in state.json (Plane.CCIGateway).
type CCIGateway struct {
	// URL is https://127.0.0.1:<port>; its serving certificate is signed by CAFile (the backend
	// plane's CA).
	URL    string `json:"url"`
	CAFile string `json:"caFile"`
	// Log is <state>/backend/cci-gateway.log: one line per request (account, method, path,
	// status, a created pod's name) and the gateway's own events.
	Log string `json:"log"`
	// Dir holds the accounts' credential files.
	Dir      string              `json:"dir"`
	Accounts []CCIGatewayAccount `json:"accounts"`
}

// CCIGatewayAccount is where an account's credentials are: AKSKFile holds `accessKey: ...` and
// `secretKey: ...` (YAML), TokenFile the token; both mode 0600.
type CCIGatewayAccount struct {
	Name           string `json:"name"`
	NamespaceQuota int    `json:"namespaceQuota"`
	AKSKFile       string `json:"akskFile"`
	TokenFile      string `json:"tokenFile"`
}

// Account reads the named account's keys and token from its files.
func (g *CCIGateway) Account(name string) (CCIAccount, error) {
	for _, a := range g.Accounts {
		if a.Name == name {
			return readAccountFiles(g.Dir, a.Name, a.NamespaceQuota)
		}
	}
	return CCIAccount{}, fmt.Errorf("the CCI gateway has no account %q", name)
}

// HTTPClient is a client that trusts the gateway's certificate (it sends no credentials).
func (g *CCIGateway) HTTPClient() (*http.Client, error) {
	caPEM, err := os.ReadFile(g.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s: no certificate", g.CAFile)
	}
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

func akskPath(dir, name string) string  { return filepath.Join(dir, name+".aksk") }
func tokenPath(dir, name string) string { return filepath.Join(dir, name+".token") }

// akskFile is the YAML of <name>.aksk (the keys burstlet's akskFile option reads).
type akskFile struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

// randomString is n characters of alphabet from crypto/rand.
func randomString(n int, alphabet string) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf), nil
}

// withKeys fills an account's missing access key (20 characters like an IAM AK), secret key (40)
// and token (an opaque string) with random ones.
func withKeys(a CCIAccount) (CCIAccount, error) {
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	const mixed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var err error
	if a.AccessKey == "" {
		if a.AccessKey, err = randomString(20, upper); err != nil {
			return a, err
		}
	}
	if a.SecretKey == "" {
		if a.SecretKey, err = randomString(40, mixed); err != nil {
			return a, err
		}
	}
	if a.Token == "" {
		raw := make([]byte, 96)
		if _, err := rand.Read(raw); err != nil {
			return a, err
		}
		a.Token = "MIItestbed" + base64.RawURLEncoding.EncodeToString(raw)
	}
	return a, nil
}

// writeAccountFiles writes <dir>/<name>.aksk and <dir>/<name>.token (0600).
func writeAccountFiles(dir string, a CCIAccount) error {
	data, err := yaml.Marshal(akskFile{AccessKey: a.AccessKey, SecretKey: a.SecretKey})
	if err != nil {
		return err
	}
	if err := writeSecretFile(akskPath(dir, a.Name), data); err != nil {
		return err
	}
	return writeSecretFile(tokenPath(dir, a.Name), []byte(a.Token+"\n"))
}

func writeSecretFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // an existing file keeps its mode on WriteFile
}

// readAccountFiles reads an account's keys and token back from dir.
func readAccountFiles(dir, name string, quota int) (CCIAccount, error) {
	a := CCIAccount{Name: name, NamespaceQuota: quota}
	data, err := os.ReadFile(akskPath(dir, name))
	if err != nil {
		return a, err
	}
	var keys akskFile
	if err := yaml.Unmarshal(data, &keys); err != nil {
		// The error may quote the file, which holds the secret key.
		return a, fmt.Errorf("%s: not YAML with accessKey and secretKey", akskPath(dir, name))
	}
	token, err := os.ReadFile(tokenPath(dir, name))
	if err != nil {
		return a, err
	}
	a.AccessKey, a.SecretKey = strings.TrimSpace(keys.AccessKey), strings.TrimSpace(keys.SecretKey)
	a.Token = strings.TrimSpace(string(token))
	if a.AccessKey == "" || a.SecretKey == "" || a.Token == "" {
		return a, fmt.Errorf("account %s: its access key, secret key or token file is empty", name)
	}
	return a, nil
}

// checkAccounts refuses duplicate names, access keys or tokens.
func checkAccounts(accounts []CCIAccount) error {
	if len(accounts) == 0 {
		return errors.New("no CCI accounts")
	}
	seen := map[string]bool{}
	for _, a := range accounts {
		for _, k := range []string{"name " + a.Name, "ak " + a.AccessKey, "token " + a.Token} {
			if seen[k] {
				return fmt.Errorf("account %s: its name, access key or token is another account's", a.Name)
			}
			seen[k] = true
		}
	}
	return nil
}
