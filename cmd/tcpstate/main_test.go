package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files with the current output")

const (
	pub  = "../../testdata/pcaps/public/"
	kern = "../../testdata/pcaps/kernel/"
)

// runCLI runs the command as a user would and returns its exit code, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	err := run(args, strings.NewReader(""), &out, &errb)
	code := 0
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
			if ee.msg != "" {
				fmt.Fprintln(&errb, "tcpstate: "+ee.msg)
			}
		} else {
			code = 2
			fmt.Fprintln(&errb, "tcpstate: "+err.Error())
		}
	}
	return code, out.String(), errb.String()
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"table-rst-inject", []string{"-r", pub + "zeek_tcp_rst-inject-rae.pcap", "-o", "table"}},
		{"table-verbose-linux-names", []string{"-r", pub + "zeek_http_get-gzip.pcap", "-o", "table", "-v", "--names", "linux"}},
		{"events-rst-inject", []string{"-r", pub + "zeek_tcp_rst-inject-rae.pcap", "-o", "events"}},
		{"events-simultaneous-close", []string{"-r", pub + "zeek_http_get-gzip.pcap", "-o", "events"}},
		{"events-port-reuse", []string{"-r", pub + "tcptrace_fast_reuse.pcap", "-o", "events"}},
		{"json-port-reuse", []string{"-r", pub + "tcptrace_fast_reuse.pcap", "-o", "json"}},
		{"json-missing-syn", []string{"-r", pub + "zeek_tcp_missing-syn.pcap", "-o", "json"}},
		{"at-seconds-mid-transfer", []string{"-r", pub + "zeek_http_get-gzip.pcap", "-o", "table", "--at", "0.03"}},
		{"at-before-close", []string{"-r", pub + "sv_http-auth-unrecognized_null.pcap", "-o", "json", "--at", "0.0015"}},
		{"zeek-tsv", []string{"-r", pub + "zeek_tcp_missing-syn.pcap", "-r", pub + "zeek_http_get-gzip.pcap", "-o", "zeek"}},
		{"filter-port", []string{"-r", pub + "tcptrace_fast_reuse.pcap", "-o", "table", "-q", "tcp[tcpflags] & tcp-syn != 0"}},
		{"damaged-file", []string{"-r", pub + "sv_smtp-to-comma_corrupt.pcap", "-o", "json"}},
		{"fail-on-reset", []string{"-r", pub + "zeek_tcp_rst-inject-rae.pcap", "-o", "table", "--fail-on", "reset,half-closed"}},
		{"fail-on-passes", []string{"-r", pub + "zeek_http_get-gzip.pcap", "-o", "json", "--fail-on", "any"}},
		{"refused", []string{"-r", pub + "cs_tcp_refuseconnection.pcapng", "-o", "table"}},
		{"expect-pass", []string{"-r", kern + "mixed-40/capture.pcap", "-o", "json", "-q", "--expect", "testdata/expect/mixed-40-good.yaml"}},
		{"expect-fail", []string{"-r", kern + "half-close/capture.pcap", "-o", "table", "--expect", "testdata/expect/half-close-strict.yaml"}},
		{"expect-unknown-key", []string{"-r", kern + "half-close/capture.pcap", "--expect", "testdata/expect/unknown-key.yaml"}},
		{"expect-bad-state", []string{"-r", kern + "half-close/capture.pcap", "--expect", "testdata/expect/bad-state.yaml"}},
		{"fail-on-half-closed-kernel", []string{"-r", kern + "half-close/capture.pcap", "-o", "json", "--fail-on", "half-closed"}},
		{"events-crossing-fins-kernel", []string{"-r", kern + "crossing-fins/capture.pcap", "-o", "events"}},
		{"events-fin-dropped-kernel", []string{"-r", kern + "fin-dropped/capture.pcap", "-o", "events"}},
		{"table-mixed-40-linux-names", []string{"-r", kern + "mixed-40/capture.pcap", "-o", "table", "--names", "linux"}},
		{"error-no-input", []string{"-o", "json"}},
		{"error-missing-file", []string{"-r", "no-such-capture.pcap"}},
		{"error-bad-filter", []string{"-r", pub + "zeek_http_get-gzip.pcap", "port", "eighty"}},
		{"error-bad-names", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--names", "solaris"}},
		{"error-bad-at", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--at", "yesterday"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkGolden(t, tc.name, tc.args) })
	}
}

// checkGolden runs the command and compares what it printed with testdata/golden/NAME.txt.
func checkGolden(t *testing.T, name string, args []string) {
	t.Helper()
	code, out, errs := runCLI(args...)
	got := fmt.Sprintf("$ tcpstate %s\nexit: %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, errs)
	if wd, err := os.Getwd(); err == nil {
		got = strings.ReplaceAll(got, wd, "$CWD") // messages name the directory they looked in
	}
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'go test ./cmd/tcpstate -update' to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (review, then 'go test ./cmd/tcpstate -update'):\n%s", path, diff(string(want), got))
	}
}

// diff shows the first differing lines.
func diff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 12; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "line %d\n  want: %s\n  got:  %s\n", i+1, w, g)
			shown++
		}
	}
	return b.String()
}
