package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/capture"
)

// Issue 16, "the first hour": what tcpdump and ss users type, and what they expect to see.
func TestGoldenFirstHour(t *testing.T) {
	filterFile := filepath.Join("testdata", "filter-port-80.txt")
	for _, tc := range []struct {
		name string
		args []string
	}{
		// runCLI's stdout is a buffer, not a terminal: the table all the same (| grep, > file).
		{"default-table-through-pipe", []string{"-r", kern + "half-close/capture.pcap"}},
		{"quiet-no-summary", []string{"-r", kern + "half-close/capture.pcap", "-q"}},
		{"filter-file", []string{"-r", kern + "mixed-40/capture.pcap", "-F", filterFile, "-q"}},
		{"filter-file-and-expression", []string{"-r", kern + "mixed-40/capture.pcap", "-F", filterFile, "port 22"}},
		{"count-with-r", []string{"-r", kern + "mixed-40/capture.pcap", "-c", "12"}},
		{"state-close-wait-any-naming", []string{"-r", kern + "mixed-40/capture.pcap", "--state", "close-wait,SYN_RCVD"}},
		{"state-json", []string{"-r", kern + "half-close/capture.pcap", "--state", "CLOSE-WAIT", "-o", "json"}},
		{"state-events", []string{"-r", kern + "mixed-40/capture.pcap", "--state", "CLOSE_WAIT", "-o", "events"}},
		{"state-zeek", []string{"-r", kern + "mixed-40/capture.pcap", "--state", "ESTAB", "-o", "zeek"}},
		{"state-none-match", []string{"-r", kern + "half-close/capture.pcap", "--state", "LISTEN"}},
		{"state-unknown", []string{"-r", kern + "half-close/capture.pcap", "--state", "WAITING"}},
		{"problems-table", []string{"-r", kern + "mixed-40/capture.pcap", "--problems"}},
		{"problems-zeek-json", []string{"-r", kern + "mixed-40/capture.pcap", "--problems", "-o", "zeek-json"}},
		{"at-duration", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--at", "30ms"}},
		{"at-duration-minutes", []string{"-r", kern + "syn-timeout/capture.pcap", "--at", "1m5s"}},
		{"at-time-of-day", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--at", "16:37:11.41"}},
		{"at-before-capture", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--at", "16:37:10"}},
		{"at-after-last-packet-note", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--at", "1m30s"}},
		{"at-after-capture", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--at", "10m"}},
		{"at-after-capture-rfc3339", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--at", "2013-03-18T17:00:00Z"}},
		{"empty-capture", []string{"-r", "testdata/empty.pcap"}},
		{"filter-matched-nothing", []string{"-r", pub + "zeek_http_get-gzip.pcap", "udp"}},
		{"filter-matched-nothing-json", []string{"-r", pub + "zeek_http_get-gzip.pcap", "-o", "json", "udp"}},
		{"damaged-fail-on", []string{"-r", pub + "sv_smtp-to-comma_corrupt.pcap", "--fail-on", "any"}},
		{"damaged-expect", []string{"-r", pub + "sv_smtp-to-comma_corrupt.pcap", "-q", "--expect", "testdata/expect/mixed-40-good.yaml"}},
		{"snaplen-with-r", []string{"-r", pub + "zeek_http_get-gzip.pcap", "-s", "96"}},
		// One definition of a problem: midstream and capture-gap are notes about the capture.
		{"fail-on-any-midstream-is-a-note", []string{"-r", kern + "midstream/capture.pcap", "--fail-on", "any"}},
		{"fail-on-any-capture-gap-is-a-note", []string{"-r", kern + "gap-data/capture.pcap", "--fail-on", "any", "-o", "json"}},
		{"fail-on-capture-gap-by-name", []string{"-r", kern + "gap-data/capture.pcap", "--fail-on", "capture-gap", "-q"}},
		{"expect-no-problem-capture-gap", []string{"-r", kern + "gap-fin/capture.pcap", "--expect", "testdata/expect/no-problem.yaml"}},
		{"one-sided-dst-port-80", []string{"-r", kern + "mixed-40/capture.pcap", "dst port 80 and host 192.0.2.2"}},
		{"one-sided-json-says-once", []string{"-r", kern + "half-close/capture.pcap", "-o", "json", "src port 80"}},
		{"annotate-without-w", []string{"-r", pub + "zeek_http_get-gzip.pcap", "--annotate"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkGolden(t, tc.name, tc.args) })
	}
}

// -n and -nn are tcpdump habits: accepted, and nothing changes (tcpstate never resolves).
func TestNumericFlagsAreNoOps(t *testing.T) {
	_, want, _ := runCLI("-r", kern+"mixed-40/capture.pcap")
	for _, flag := range []string{"-n", "-nn"} {
		code, got, errs := runCLI("-r", kern+"mixed-40/capture.pcap", flag)
		if code != 0 || got != want {
			t.Errorf("%s: exit %d, stderr %q; output differs from the run without it", flag, code, errs)
		}
	}
}

// packetsIn counts the packet records of a capture file, and reads them to the end.
func packetsIn(t *testing.T, path string) uint64 {
	t.Helper()
	src, err := capture.OpenFiles([]string{path}, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var seg capture.Segment
	for src.Next(&seg) {
	}
	if errs := src.Errs(); len(errs) > 0 {
		t.Fatalf("%s: %v", path, errs[0])
	}
	return src.Stats().Packets
}

// -r in -w out 'filter' writes what the filter selected (TCP or not), as tcpdump does; -c
// stops after COUNT of them. The file written gives the same states as the filter on the input.
func TestWriteWithRead(t *testing.T) {
	dir := t.TempDir()
	in := kern + "mixed-40/capture.pcap"
	out := filepath.Join(dir, "port80.pcap")
	code, _, errs := runCLI("-r", in, "-w", out, "port 80")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	src, err := capture.OpenFiles([]string{in}, capture.Config{Filter: "port 80"})
	if err != nil {
		t.Fatal(err)
	}
	var seg capture.Segment
	for src.Next(&seg) {
	}
	st := src.Stats()
	src.Close()
	want := st.Packets - st.Filtered
	if got := packetsIn(t, out); got != want || want == 0 || want == st.Packets {
		t.Errorf("-w wrote %d packets; the filter selects %d of %d", got, want, st.Packets)
	}
	_, fromInput, _ := runCLI("-r", in, "port 80") // the table: packet numbers (in -o json details) differ
	_, fromOutput, _ := runCLI("-r", out)
	if fromInput != fromOutput || fromInput == "" {
		t.Errorf("the written file does not give what the filter gave on the input:\n%s\nvs\n%s", fromOutput, fromInput)
	}

	counted := filepath.Join(dir, "first12.pcap")
	if code, _, errs := runCLI("-r", in, "-w", counted, "-c", "12"); code != 0 {
		t.Fatalf("-c 12: exit %d: %s", code, errs)
	}
	if got := packetsIn(t, counted); got != 12 {
		t.Errorf("-c 12 -w: wrote %d packets, want 12", got)
	}

	// -w onto the input would destroy it.
	if code, _, errs := runCLI("-r", counted, "-w", counted); code != 2 || !strings.Contains(errs, "destroy the input") {
		t.Errorf("-w onto the -r file: exit %d, %q", code, errs)
	}
	if got := packetsIn(t, counted); got != 12 {
		t.Errorf("the input was changed: %d packets", got)
	}
}

// --annotate: Wireshark shows tcpstate's verdict beside every packet that changed a state.
func TestAnnotateTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark is not installed (make peer-deps, or apt-get install tshark): cannot check what Wireshark shows")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		capture string
		want    []string // comments, each on some packet
	}{
		{kern + "zero-window/capture.pcap", []string{"client CLOSED → SYN_SENT", "client SYN_SENT → ESTABLISHED", "zero-window: server"}},
		{kern + "half-close/capture.pcap", []string{"server ESTABLISHED → CLOSE_WAIT", "client FIN_WAIT_1 → FIN_WAIT_2"}},
	} {
		out := filepath.Join(dir, filepath.Base(filepath.Dir(tc.capture))+".pcapng")
		if code, _, errs := runCLI("-r", tc.capture, "-w", out, "--annotate", "-q"); code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		cmd := exec.Command(tshark, "-r", out, "-T", "fields", "-e", "frame.number", "-e", "frame.comment")
		cmd.Env = append(os.Environ(), "HOME="+dir) // tshark writes its profile there
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", out, err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if n := packetsIn(t, tc.capture); uint64(len(lines)) != n {
			t.Errorf("%s: tshark reads %d packets in the annotated file, the input has %d", out, len(lines), n)
		}
		text := string(b)
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: no packet has the comment %q; tshark shows:\n%s", out, w, text)
			}
		}
	}
}

// Bad input loses nothing: on a damaged file, --html and --expect-init still write what was
// read before the damage, and the exit code stays 2.
func TestDamagedFileStillWritesReports(t *testing.T) {
	dir := t.TempDir()
	html, exp := filepath.Join(dir, "r.html"), filepath.Join(dir, "e.yaml")
	code, out, errs := runCLI("-r", pub+"sv_smtp-to-comma_corrupt.pcap", "--html", html, "--expect-init", exp, "--fail-on", "any")
	if code != 2 || !strings.Contains(errs, "reading stopped at packet 19") {
		t.Fatalf("exit %d, want 2 naming the damage: %s", code, errs)
	}
	if !strings.Contains(out, "10.7.29.101:49898") {
		t.Errorf("the table lost the connection read before the damage:\n%s", out)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "sv_smtp-to-comma_corrupt.pcap") {
		t.Errorf("--html on a damaged file: %v", err)
	}
	if b, err := os.ReadFile(exp); err != nil || !strings.Contains(string(b), "178.63.41.150:25") {
		t.Errorf("--expect-init on a damaged file: %v\n%s", err, b)
	}
	if !strings.Contains(errs, "wrote expectations for 1 connection(s)") || !strings.Contains(errs, "before the damage") {
		t.Errorf("--expect-init does not say what it wrote from:\n%s", errs)
	}
	if !strings.Contains(errs, "--fail-on: no finding in the connections read before the damage") {
		t.Errorf("--fail-on does not report on a damaged file:\n%s", errs)
	}
}
