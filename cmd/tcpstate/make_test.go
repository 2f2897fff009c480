package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make run says where it built the binary; make install PREFIX=... puts it in PREFIX/bin.
func TestMakeRunAndInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: make builds the binary")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed: cannot check the Makefile's run and install targets")
	}
	repo, _ := filepath.Abs("../..")
	out, err := exec.Command(mk, "-C", repo, "run").CombinedOutput()
	if err != nil {
		t.Fatalf("make run: %v\n%s", err, out)
	}
	built := filepath.Join(repo, "bin", "tcpstate")
	if !strings.Contains(string(out), "built "+built) || !strings.Contains(string(out), "make install") {
		t.Errorf("make run does not say where it built the binary (%s) and how to install it:\n%s", built, out)
	}
	if !strings.Contains(string(out), "ESTABLISHED") {
		t.Errorf("make run did not show the table:\n%s", out)
	}

	prefix := t.TempDir()
	out, err = exec.Command(mk, "-C", repo, "install", "PREFIX="+prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("make install PREFIX=%s: %v\n%s", prefix, err, out)
	}
	bin := filepath.Join(prefix, "bin", "tcpstate")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("make install PREFIX=%s: no executable %s (%v)\n%s", prefix, bin, err, out)
	}
	v, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(v), "tcpstate ") {
		t.Errorf("%s --version: %q, %v", bin, v, err)
	}
}
