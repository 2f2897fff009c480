package flowtable

import (
	"bytes"
	"testing"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/benchgen"
	"github.com/tcpstate/tcpstate/tracker"
)

// BenchmarkPack packs and unpacks the connections of workload A as they stand at its end (one
// op: one connection packed and unpacked).
func BenchmarkPack(b *testing.B) {
	var buf bytes.Buffer
	benchgen.Generate(&buf, benchgen.Config{Workload: "A", Seed: 1, Conns: 2000, Concurrent: 500})
	src, _ := capture.OpenFiles([]string{"-"}, capture.Config{Stdin: &buf})
	tr := New(Config{})
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
	}
	conns := tr.Conns()
	var cs codecState
	var c tracker.Conn
	b.ReportAllocs()
	size := 0
	for i := 0; b.Loop(); i++ {
		blob := cs.packConn(conns[i%len(conns)])
		size += len(blob)
		c = tracker.Conn{Zeek: c.Zeek.Reuse()}
		cs.unpackConn(blob, &c, nil)
	}
	b.ReportMetric(float64(size)/float64(b.N), "B/blob")
}
