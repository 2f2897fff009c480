package capture

import (
	"os"
	"testing"
)

// The progress bar's total is the sum of the files' sizes (as stored): with several -r files,
// Stats().Bytes must only grow, and reach exactly that sum at the end, whatever the formats
// (issue 16: the bar's total and ETA with several files).
func TestProgressBytesSeveralFiles(t *testing.T) {
	files := []string{"../testdata/pcaps/kernel/mixed-40/capture.pcap", "../testdata/pcaps/public/cs_tcp_refuseconnection.pcapng",
		"../testdata/pcaps/kernel/random-loss/capture.pcap", "../testdata/pcaps/public/zeek_http_get-gzip.pcap"}
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Skip(err)
		}
		total += fi.Size()
	}
	src, err := OpenFiles(files, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var seg Segment
	var last int64
	for src.Next(&seg) {
		b := src.Stats().Bytes
		if b < last || b > total {
			t.Fatalf("progress went from %d to %d bytes (total %d)", last, b, total)
		}
		last = b
	}
	if got := src.Stats().Bytes; got != total {
		t.Errorf("at the end, %d bytes read of %d", got, total)
	}
}
