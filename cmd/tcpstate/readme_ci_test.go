package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's CI example is run here exactly as written: its shell block is extracted from
// README.md and executed in a fresh network namespace (its own loopback), with a stand-in
// "integration test" that talks to a service on port 8080.

func readmeCIBlock(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	const begin, end = "<!-- ci-example:begin -->", "<!-- ci-example:end -->"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %s ... %s block", begin, end)
	}
	block := s[i+len(begin) : j]
	a := strings.Index(block, "```sh\n")
	b := strings.LastIndex(block, "```")
	if a < 0 || b <= a {
		t.Fatal("the CI example block has no ```sh code")
	}
	return block[a+len("```sh\n") : b]
}

// TestMain lets this test binary act as the stand-in service and its tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TCPSTATE_CI_PEER"); mode != "" {
		os.Exit(ciPeer(mode))
	}
	os.Exit(m.Run())
}

// ciPeer plays the service under test ("serve", or "serve-leak": it never closes its second
// connection, a CLOSE_WAIT leak, and stays up a while like a real service) or its tests
// ("client": three short exchanges with clean closes).
func ciPeer(mode string) int {
	if mode == "client" {
		for i := 0; i < 3; i++ {
			c, err := net.Dial("tcp", "127.0.0.1:8080")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			c.Close()
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		return 0
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var held []net.Conn
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			if mode == "serve-leak" && i == 1 {
				held = append(held, c) // never closed: the client's FIN leaves it in CLOSE_WAIT
				continue
			}
			c.Close()
		}
	}()
	time.Sleep(4 * time.Second) // outlives the capture, as a running service would
	return 0
}

func TestREADMECIExample(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the README's CI example in its own network namespace with tcpdump")
	}
	for _, tool := range []string{"ip", "tcpdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make lab-deps installs it)", tool)
		}
	}
	block := readmeCIBlock(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "tcpstate"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tcpstate: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode string
		exit int
	}{{"clean", 0}, {"leak", 1}} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			serve := "serve"
			if tc.mode == "leak" {
				serve = "serve-leak"
			}
			script := fmt.Sprintf("#!/bin/sh\nTCPSTATE_CI_PEER=%s %s >/dev/null 2>&1 &\nsleep 0.3\nTCPSTATE_CI_PEER=client exec %s\n", serve, self, self)
			os.WriteFile(filepath.Join(dir, "run-integration-tests.sh"), []byte(script), 0o755)
			os.WriteFile(filepath.Join(dir, "tcp-expect.yaml"), []byte(
				"- name: every connection to the service closes cleanly\n  server: 127.0.0.1:8080\n  count: 3\n  client_state: TIME_WAIT\n  server_state: CLOSED\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "ci.sh"), []byte("set -e\n"+block), 0o755)
			ns := fmt.Sprintf("tslci%d%s", os.Getpid(), tc.mode)
			if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
				t.Skipf("cannot create a network namespace: %v %s", err, out)
			}
			defer exec.Command("ip", "netns", "del", ns).Run()
			exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").Run()
			cmd := exec.Command("ip", "netns", "exec", ns, "bash", "ci.sh")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.exit {
				t.Fatalf("README CI example exited %d, want %d:\n%s", code, tc.exit, out)
			}
			if tc.exit == 1 && !strings.Contains(string(out), "half-closed") {
				t.Errorf("the failing run should name the half-closed connection:\n%s", out)
			}
			t.Logf("README CI example (%s) exit %d:\n%s", tc.mode, code, out)
		})
	}
}
