package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/benchgen"
)

// step is what a Source showed after one call: the segment, if any, and its Stats and errors
// then (mid-stream Stats feed the progress bar: they must not depend on how segments are
// taken).
type step struct {
	seg   Segment
	ok    bool
	stats Stats
	errs  string
}

func (s step) String() string { return fmt.Sprintf("%v %+v %+v %s", s.ok, s.seg, s.stats, s.errs) }

// readSteps reads paths to the end, taking each segment with take, and records every step.
func readSteps(t *testing.T, paths []string, take func(call int, src *source) *Segment) []step {
	t.Helper()
	s, err := OpenFiles(paths, Config{})
	if err != nil {
		t.Fatalf("OpenFiles(%v): %v", paths, err)
	}
	defer s.Close()
	src := s.(*source)
	var steps []step
	for call := 0; ; call++ {
		seg := take(call, src)
		st := step{ok: seg != nil, stats: src.Stats(), errs: fmt.Sprint(src.Errs())}
		if seg != nil {
			st.seg = *seg
		}
		steps = append(steps, st)
		if seg == nil {
			return steps
		}
	}
}

// TestNextRefAndNextInMatchNext: NextRef and NextIn (and any mix of the three) hand out the
// very segments Next does, with the same Stats and errors at every step, for single files
// (clean, damaged, cut short, gzip) and merges; NextIn of a single input decodes into the
// slot lent by the call before, and a merge never uses a lent slot.
func TestNextRefAndNextInMatchNext(t *testing.T) {
	dir := sharedPcaps(t)
	var singles [][]string
	for _, c := range corpus {
		singles = append(singles, []string{filepath.Join(dir, c.name)})
	}
	// Cut short in the middle of a record, and gzip-compressed.
	data := readFile(t, filepath.Join(dir, "public/sv_rst-unacked-stream-10.pcap"))
	cut := writeTemp(t, "cut.pcap", data[:len(data)*2/3])
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	gzPath := writeTemp(t, "x.pcap.gz", gz.Bytes())
	singles = append(singles, []string{cut}, []string{gzPath})
	cases := singles
	for i := 1; i < len(singles); i += 3 {
		cases = append(cases, []string{singles[i-1][0], singles[i][0]})
	}
	cases = append(cases,
		[]string{singles[0][0], cut, singles[len(singles)/2][0]},
		[]string{cut, cut}, // equal timestamps: file order decides
	)

	for _, paths := range cases {
		name := ""
		for _, p := range paths {
			name += filepath.Base(p) + "+"
		}
		t.Run(name, func(t *testing.T) {
			var seg Segment
			want := readSteps(t, paths, func(_ int, src *source) *Segment {
				if !src.Next(&seg) {
					return nil
				}
				return &seg
			})
			gotRef := readSteps(t, paths, func(_ int, src *source) *Segment { return src.NextRef() })

			var slots [3]Segment
			var lentBefore *Segment
			inPlace := 0
			gotIn := readSteps(t, paths, func(call int, src *source) *Segment {
				lent := &slots[call%3] // never the slot lent to the call before
				p := src.NextIn(lent)
				if p != nil && (p == &slots[0] || p == &slots[1] || p == &slots[2]) {
					if len(paths) > 1 {
						t.Fatalf("call %d: a merge handed out a lent slot", call)
					}
					if p != lentBefore {
						t.Fatalf("call %d: handed out a lent slot other than the one lent by the call before", call)
					}
					inPlace++
				}
				lentBefore = lent
				return p
			})
			if len(paths) == 1 && len(want) > 2 && inPlace != len(want)-2 {
				t.Errorf("%d of %d segments handed out in a lent slot, want all but the first", inPlace, len(want)-1)
			}

			gotMixed := readSteps(t, paths, func(call int, src *source) *Segment {
				switch call % 3 {
				case 0:
					if !src.Next(&seg) {
						return nil
					}
					return &seg
				case 1:
					return src.NextRef()
				}
				return src.NextIn(&slots[call%2])
			})

			for _, got := range []struct {
				how   string
				steps []step
			}{{"NextRef", gotRef}, {"NextIn", gotIn}, {"mixed", gotMixed}} {
				if len(got.steps) != len(want) {
					t.Errorf("%s: %d steps, Next took %d", got.how, len(got.steps), len(want))
					continue
				}
				for i := range want {
					if !reflect.DeepEqual(got.steps[i], want[i]) {
						t.Errorf("%s: step %d differs:\n  Next: %v\n  got:  %v", got.how, i, want[i], got.steps[i])
						break
					}
				}
			}
		})
	}
}

// TestPlainFileReadSize: a plain regular file is read in larger reads (readSize, past
// plainReadFrom) than a stream; that changes nothing: the same segments, Stats at every step, and errors (where
// and why reading stopped) as reading the same bytes from standard input. Among the files:
// several MiB of bulk transfer, records of the largest size (whose remainder and the next
// read fill the whole buffer), and each of those cut short or damaged past the first read.
func TestPlainFileReadSize(t *testing.T) {
	dir := t.TempDir()
	bulk := filepath.Join(dir, "bulk.pcap")
	if _, err := benchgen.GenerateFile(bulk, benchgen.Config{Workload: "C", Seed: 1, Scale: 0.002}); err != nil {
		t.Fatal(err)
	}
	frame := tcpFrame(t)
	var recs []pcapRecord
	at := time.Unix(1700000000, 0)
	for i := range 14 {
		data := frame
		if i%3 != 2 {
			data = append(append([]byte(nil), frame...), make([]byte, maxRecordLen-len(frame))...)
		}
		recs = append(recs, pcapRecord{ts: at.Add(time.Duration(i) * time.Millisecond), data: data})
	}
	big := buildPcap(1, recs, binary.LittleEndian, false)
	files := map[string][]byte{"bulk": readFile(t, bulk), "big": big}
	for _, name := range []string{"bulk", "big"} {
		data := files[name]
		files[name+"-cut"] = data[:len(data)*3/4]
		bad := append([]byte(nil), data...)
		// A record header claiming too much, at the first record past 1.5 MiB.
		_, rs := parsePcap(t, data)
		off := 24
		for _, r := range rs {
			if off > 3<<19 {
				break
			}
			off += 16 + len(r.data)
		}
		binary.LittleEndian.PutUint32(bad[off+8:], 1<<30)
		files[name+"-bad"] = bad
	}
	for _, c := range corpus { // (when the shared corpus is there)
		if strings.HasSuffix(c.name, ".pcap") {
			if b, err := os.ReadFile(filepath.Join("..", "..", "shared", "pcaps", c.name)); err == nil {
				files[c.name] = b
			}
		}
	}
	defer func(from int64) { plainReadFrom = from }(plainReadFrom)
	for _, from := range []int64{0, 1 << 20} { // larger reads from the start, and midway
		plainReadFrom = from
		for name, data := range files {
			t.Run(fmt.Sprintf("%s/from-%d", name, from), func(t *testing.T) {
				path := writeTemp(t, "f.pcap", data)
				read := func(paths []string, cfg Config) []step {
					s, err := OpenFiles(paths, cfg)
					if err != nil {
						t.Fatalf("OpenFiles: %v", err)
					}
					defer s.Close()
					src := s.(*source)
					if len(paths) == 1 && paths[0] == path && src.inputs[0].pcap.readSize != plainReadSize {
						t.Fatalf("a plain file is read %d bytes at a time, want %d", src.inputs[0].pcap.readSize, plainReadSize)
					}
					var steps []step
					for {
						seg := src.NextRef()
						st := step{ok: seg != nil, stats: src.Stats()}
						for _, e := range src.Errs() {
							st.errs += fmt.Sprintf("packet %d offset %d: %v;", e.Packet, e.Offset, e.Err)
						}
						if seg != nil {
							st.seg = *seg
						}
						steps = append(steps, st)
						if seg == nil {
							return steps
						}
					}
				}
				got := read([]string{path}, Config{})
				want := read([]string{"-"}, Config{Stdin: bytes.NewReader(data)})
				if len(got) != len(want) {
					t.Fatalf("%d steps from the file, %d from standard input", len(got), len(want))
				}
				for i := range want {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("step %d differs:\n  stdin: %v\n  file:  %v", i, want[i], got[i])
					}
				}
				if (strings.HasSuffix(name, "-cut") || strings.HasSuffix(name, "-bad")) && got[len(got)-1].errs == "" {
					t.Errorf("no read error for a damaged file")
				}
			})
		}
	}
}
