package capture

import (
	"runtime"
	"testing"
)

// benchFile is the largest capture of the corpus: 82,582 loopback packets, 500 connections.
const benchFile = "public/zeek_echo-connections.pcap"

// BenchmarkDecode measures the link/IP/TCP decoder alone, on the frames of benchFile held in
// memory. One op is one packet.
func BenchmarkDecode(b *testing.B) {
	_, recs := parsePcap(b, readFile(b, corpusFile(b, benchFile)))
	for _, verify := range []bool{false, true} {
		name := "plain"
		if verify {
			name = "checksums"
		}
		b.Run(name, func(b *testing.B) {
			d := decoder{verifyChecksums: verify}
			var s Segment
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := &recs[i%len(recs)]
				if d.decode(linkEthernet, r.data, r.wireLen, &s) != isTCP {
					b.Fatal("not TCP")
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// BenchmarkReadFile reads benchFile end to end through Source.Next (open, read, decode, merge).
// One op is the whole file; ns/packet and allocs/packet are reported beside it.
func BenchmarkReadFile(b *testing.B) {
	path := corpusFile(b, benchFile)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{}},
		{"filter", Config{Filter: "tcp port 7000"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var packets uint64
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src, err := OpenFiles([]string{path}, c.cfg)
				if err != nil {
					b.Fatal(err)
				}
				var s Segment
				for src.Next(&s) {
				}
				packets += src.Stats().Packets
				src.Close()
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(packets), "allocs/packet")
		})
	}
}
