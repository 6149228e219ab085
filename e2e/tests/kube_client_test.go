package tests

import (
	"os"
	"os/exec"
	"testing"
)

// TestKubeClientAgainstTestbed runs burstlet's C++ client tests (test/testbed, gtest) against
// this run's testbed: CRUD, every patch type, paging over 2,500 objects, watch timeouts,
// 410 after compaction, client-certificate, token and exec-plugin auth, and a non-admin
// identity getting Forbidden.
func TestKubeClientAgainstTestbed(t *testing.T) {
	bin := os.Getenv("BURSTLET_TESTBED_TEST")
	if bin == "" {
		t.Fatal("BURSTLET_TESTBED_TEST is not set (make e2e sets it to the sanitizer build's testbed_test)")
	}
	cmd := exec.Command(bin, "--gtest_brief=0")
	cmd.Env = append(os.Environ(), "BURSTLET_TESTBED_STATE="+env.tb.StateDir)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("testbed_test failed: %v", err)
	}
}
