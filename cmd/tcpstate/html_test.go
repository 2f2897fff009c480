package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --html writes the page after the analysis and leaves the usual output alone; with -o events
// both the events and the page's state history come from the same tracker hooks.
func TestHTMLFlag(t *testing.T) {
	page := filepath.Join(t.TempDir(), "report.html")
	code, out, errb := runCLI("-r", kern+"crossing-fins/capture.pcap", "-o", "events", "--names", "linux", "--html", page)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if n := strings.Count(out, "\n"); n != 10 || !strings.Contains(out, "CLOSING -> TIME-WAIT") {
		t.Errorf("events output with --html: %d lines:\n%s", n, out)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{`id="tcpstate-data"`, `"naming":"linux"`, `"conn_count":1`, "crossing-fins/capture.pcap", "tcpstate " + version} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The events' reasons reached the page too: both hooks ran.
	for _, reason := range []string{"sent SYN", "sent SYN-ACK", "its ACK 556570291 covers the peer's FIN"} {
		if !strings.Contains(html, `"`+reason+`"`) {
			t.Errorf("page lacks the state change reason %q", reason)
		}
	}
}

func TestHTMLFlagUnwritable(t *testing.T) {
	code, _, errb := runCLI("-r", kern+"crossing-fins/capture.pcap", "-o", "json", "--html", filepath.Join(t.TempDir(), "no", "such", "dir", "r.html"))
	if code != 2 || !strings.Contains(errb, "--html") || !strings.Contains(errb, "no such file or directory") {
		t.Errorf("exit %d, stderr %q: want 2 and a message naming --html and the cause", code, errb)
	}
}
