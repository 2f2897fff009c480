package tracker

import (
	"bytes"
	"runtime"
	"testing"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/benchgen"
)

func TestDebugBlobSize(t *testing.T) {
	for _, w := range []string{"A", "B"} {
		var buf bytes.Buffer
		cfg := benchgen.Config{Workload: w, Seed: 1, Scale: 0.1}
		if _, err := benchgen.Generate(&buf, cfg); err != nil {
			t.Fatal(err)
		}
		src, _ := capture.OpenFiles([]string{"-"}, capture.Config{Stdin: &buf})
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		tr := New(Config{Stream: &StreamConfig{OnFinished: func(*Conn) {}}})
		var seg capture.Segment
		for src.Next(&seg) {
			tr.Add(&seg)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		n, tot := 0, 0
		for ei := int32(0); ei < tr.ents.n; ei++ {
			if e := tr.ents.at(ei); e.blob != "" {
				n++
				tot += len(e.blob)
			}
		}
		t.Logf("%s: %d packed, avg blob %d B; entries %d (%d B each), index %d slots; heap %d B/conn",
			w, n, tot/max(n, 1), tr.ents.n, unsafe.Sizeof(entry{}), len(tr.index.slots), (m1.HeapAlloc-m0.HeapAlloc)/uint64(max(n, 1)))
	}
}
