package flowtable

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/reflectfill"
	"github.com/tcpstate/tcpstate/tracker"
)

// TestPackSegmentRoundTrip: every field of a segment survives packing (a connection that saw
// one segment is packed as that segment).
func TestPackSegmentRoundTrip(t *testing.T) {
	all := reflectfill.NewFiller(-1, nil)
	var s capture.Segment
	all.Fill(reflect.ValueOf(&s).Elem())
	for i := -1; i < all.N(); i++ {
		f := reflectfill.NewFiller(i, nil)
		var s capture.Segment
		f.Fill(reflect.ValueOf(&s).Elem())
		var cs codecState
		blob := cs.packSegment(7, &s)
		var got capture.Segment
		cs.start(false, blob)
		var kind, id uint64
		cs.head(&kind, &id, &got.Src, &got.Dst)
		packSegment(&cs.k, &got)
		if !reflect.DeepEqual(s, got) || id != 7 || kind != blobSegment {
			t.Errorf("segment field %s does not survive packing: %s", f.Name(), reflectfill.FirstDiff(reflect.ValueOf(&s).Elem(), reflect.ValueOf(&got).Elem(), "Segment"))
		}
	}
}

// TestReplayedFirstSegment: a connection rebuilt from its first segment is the connection that
// segment built, for the first segment of every connection of the bundled captures.
func TestReplayedFirstSegment(t *testing.T) {
	files, _ := filepath.Glob("../testdata/pcaps/*/*.pcap*")
	kern, _ := filepath.Glob("../testdata/pcaps/kernel/*/capture.pcap")
	n := 0
	for _, path := range append(files, kern...) {
		src, err := capture.OpenFiles([]string{path}, capture.Config{})
		if err != nil {
			continue
		}
		tr := New(Config{Stream: &StreamConfig{}})
		var seg capture.Segment
		for src.Next(&seg) {
			before := tr.stats.Connections
			tr.Add(&seg)
			if tr.stats.Connections == before {
				continue
			}
			c := tr.current(seg.Src, seg.Dst)
			if c == nil || !c.OnlyFirst() {
				continue
			}
			n++
			var r live
			tr.unpack([]byte(tr.st.cs.packSegment(c.ID, &liveOf(c).first)), &r)
			want, got := tr.st.cs.packConn(c), tr.st.cs.packConn(&r.c)
			if want != got {
				var w, g tracker.Conn
				tr.st.cs.unpackConn(want, &w, nil)
				tr.st.cs.unpackConn(got, &g, nil)
				t.Fatalf("%s: connection %d rebuilt from its first segment differs:\n%+v\n%+v", path, c.ID, w, g)
			}
		}
		src.Close()
	}
	if n < 100 {
		t.Errorf("only %d connections checked", n)
	}
}
