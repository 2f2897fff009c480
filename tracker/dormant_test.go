package tracker

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/zeek"
)

// filler sets the fields of a value through reflection, unexported ones included: every leaf
// (a number, bool, string, time, address) gets a value of its own, or only the leaf numbered
// only (when it is not negative). Slices get one element (when only is set, only the slice
// that holds the leaf), pointers a value.
type filler struct {
	only int // the one leaf to set; -1: all
	n    int // leaves seen so far
	path []string
	name string // the path of the leaf that was set, when only >= 0
}

// skipped are the fields packing leaves out on purpose: the tracker's own bookkeeping and the
// configuration pointers that unpacking sets back.
func skipped(owner reflect.Type, field string) bool {
	switch owner {
	case reflect.TypeOf(Conn{}):
		return field == "rt"
	case reflect.TypeOf(zeek.View{}), zrowType:
		return field == "cfg"
	}
	return false
}

func settable(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

func (f *filler) leaf(v reflect.Value, set func(k int)) {
	k := f.n
	f.n++
	if f.only < 0 || f.only == k {
		set(k)
		if f.only == k {
			f.name = fmt.Sprint(f.path)
		}
	}
}

func (f *filler) fill(v reflect.Value) {
	switch v.Type() {
	case reflect.TypeOf(time.Time{}):
		f.leaf(v, func(k int) {
			v.Set(reflect.ValueOf(time.Date(2020+k%7, 3, 1, 2, 3, k, 1000*k+7, time.UTC)))
		})
		return
	case reflect.TypeOf(netip.Addr{}):
		f.leaf(v, func(k int) { v.Set(reflect.ValueOf(netip.AddrFrom16([16]byte{0x20, 1, 15: byte(k)}))) })
		return
	case reflect.TypeOf(netip.AddrPort{}):
		f.leaf(v, func(k int) {
			v.Set(reflect.ValueOf(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(k), 1}), uint16(1000+k))))
		})
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if skipped(v.Type(), v.Type().Field(i).Name) {
				continue
			}
			f.path = append(f.path, v.Type().Field(i).Name)
			f.fill(settable(v.Field(i)))
			f.path = f.path[:len(f.path)-1]
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			f.path = append(f.path, fmt.Sprint(i))
			f.fill(v.Index(i))
			f.path = f.path[:len(f.path)-1]
		}
	case reflect.Slice:
		// One element, but when only one leaf is set and not in it: then the slice stays
		// empty, as a block that holds it would be left out.
		s := reflect.MakeSlice(v.Type(), 1, 1)
		first := f.n
		f.fill(s.Index(0))
		if f.only < 0 || first <= f.only && f.only < f.n {
			v.Set(s)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Bool:
		f.leaf(v, func(int) { v.SetBool(true) })
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f.leaf(v, func(k int) { v.SetInt(int64(k%100 + 3)) })
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f.leaf(v, func(k int) { v.SetUint(uint64(k%100 + 3)) })
	case reflect.String:
		f.leaf(v, func(k int) { v.SetString(fmt.Sprintf("s%d<é>", k)) })
	default:
		panic(fmt.Sprintf("%v: a %v field: teach packing (dormant.go) and this test about it", f.path, v.Kind()))
	}
}

// normalize makes empty slices nil, so that comparing tells apart only what the tracker can.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			normalize(settable(v.Field(i)))
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
		}
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	}
}

func roundTrip(t *testing.T, c *Conn, what string) {
	t.Helper()
	roundTripInto(t, c, &Conn{}, what)
}

// roundTripInto packs c and unpacks it into got, which must come out equal to c.
func roundTripInto(t *testing.T, c, got *Conn, what string) {
	t.Helper()
	var cs codecState
	blob := cs.packConn(c)
	cs.unpackConn(blob, got, nil)
	// Both Zeek views are bound to nil (the filler skips cfg, unpackConn binds zcfg nil).
	got.rt = c.rt
	normalize(reflect.ValueOf(c).Elem())
	normalize(reflect.ValueOf(got).Elem())
	if !reflect.DeepEqual(c, got) {
		t.Errorf("%s does not survive packing: %s", what, firstDiff(reflect.ValueOf(c).Elem(), reflect.ValueOf(got).Elem(), "Conn"))
	}
}

// firstDiff names the first field where a and b differ, with both values.
func firstDiff(a, b reflect.Value, path string) string {
	if a.Type() == reflect.TypeOf(time.Time{}) || a.Type() == reflect.TypeOf(netip.AddrPort{}) || a.Type() == reflect.TypeOf(netip.Addr{}) {
		if ai, bi := valueOf(a), valueOf(b); !reflect.DeepEqual(ai, bi) {
			return fmt.Sprintf("%s: %#v != %#v", path, ai, bi)
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := firstDiff(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Array, reflect.Slice:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d != %d", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := firstDiff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path + ": nil mismatch"
			}
			return ""
		}
		return firstDiff(a.Elem(), b.Elem(), path)
	}
	if ai, bi := valueOf(a), valueOf(b); ai != bi {
		return fmt.Sprintf("%s: %v != %v", path, ai, bi)
	}
	return ""
}

func valueOf(v reflect.Value) any {
	p := reflect.New(v.Type())
	p.Elem().Set(reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem())
	return p.Elem().Interface()
}

// TestPackRoundTrip: a packed connection unpacks to exactly what was packed, every field of it
// (unexported, nested, in other packages) set at once, and each set alone, so that a field
// packing forgets, or a "nothing here" shortcut that overlooks it, fails here.
func TestPackRoundTrip(t *testing.T) {
	all := &filler{only: -1}
	var c Conn
	all.fill(reflect.ValueOf(&c).Elem())
	roundTrip(t, &c, "a connection with every field set")
	for i := 0; i < all.n; i++ {
		f := &filler{only: i}
		var c Conn
		f.fill(reflect.ValueOf(&c).Elem())
		roundTrip(t, &c, "field "+f.name)
	}
	if all.n < 200 {
		t.Errorf("only %d fields found: the filler does not reach them all", all.n)
	}
}

// TestPackOverwrites: unpacking sets every field, zero ones and those of blocks that were left
// out included, so that a Conn taken from a pool (and the Zeek rows it keeps) holds nothing of
// what it held: a connection with each field set alone is unpacked into one with every field
// set.
func TestPackOverwrites(t *testing.T) {
	all := &filler{only: -1}
	all.fill(reflect.ValueOf(&Conn{}).Elem())
	for i := -1; i < all.n; i++ {
		f := &filler{only: i}
		var c, dirty Conn
		f.fill(reflect.ValueOf(&c).Elem())
		(&filler{only: -1}).fill(reflect.ValueOf(&dirty).Elem())
		what := "a connection with every field set"
		if i >= 0 {
			what = "field " + f.name
		}
		roundTripInto(t, &c, &dirty, what+", unpacked over another")
	}
}

// TestPackTimes: times and durations survive packing exactly, near and far from the base,
// with any precision.
func TestPackTimes(t *testing.T) {
	base := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	times := []time.Time{base, base.Add(1), base.Add(-1), base.Add(time.Hour + 7), base.Add(-40 * 365 * 24 * time.Hour),
		base.Add(33 * 365 * 24 * time.Hour), time.Unix(1<<40, 999999999).UTC(), time.Unix(-1<<40, 1).UTC(),
		time.Date(50000, 1, 1, 0, 0, 0, 1, time.UTC), time.Unix(0, 0).UTC(), time.Unix(0, 1).UTC()}
	for _, b := range []time.Time{base, {}, time.Unix(0, 0).UTC()} {
		for _, x := range times {
			var c Conn
			c.FirstSeen, c.LastSeen, c.Client.Since = b, x, x
			c.rtt[0] = x.Sub(base)
			setZeekRow(&c.Zeek, x.UnixNano(), -x.UnixNano())
			c.Client.ev.firstSYN, c.Client.ev.lastSYN, c.Server.ev.tReset = stampOf(x), stampOf(x), stampOf(x).add(-1)
			c.synTime[1], c.lastData = stampOf(x), stampMax
			c.Server.ev.tGotFIN = stampMin
			roundTrip(t, &c, fmt.Sprintf("time %v with base %v", x, b))
		}
	}
}

// TestPackSegmentRoundTrip: every field of a segment survives packing (a connection that saw
// one segment is packed as that segment).
func TestPackSegmentRoundTrip(t *testing.T) {
	all := &filler{only: -1}
	var s capture.Segment
	all.fill(reflect.ValueOf(&s).Elem())
	for i := -1; i < all.n; i++ {
		f := &filler{only: i}
		var s capture.Segment
		f.fill(reflect.ValueOf(&s).Elem())
		var cs codecState
		blob := cs.packSegment(7, &s)
		var got capture.Segment
		cs.start(false, blob)
		var kind, id uint64
		cs.head(&kind, &id, &got.Src, &got.Dst)
		packSegment(&cs.k, &got)
		if !reflect.DeepEqual(s, got) || id != 7 || kind != blobSegment {
			t.Errorf("segment field %s does not survive packing: %s", f.name, firstDiff(reflect.ValueOf(&s).Elem(), reflect.ValueOf(&got).Elem(), "Segment"))
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
			if c == nil || !c.onlyFirst() {
				continue
			}
			n++
			var r Conn
			tr.unpack(tr.st.cs.packSegment(c.ID, &c.rt.first), &r)
			want, got := tr.st.cs.packConn(c), tr.st.cs.packConn(&r)
			if want != got {
				var w, g Conn
				tr.st.cs.unpackConn(want, &w, nil)
				tr.st.cs.unpackConn(got, &g, nil)
				t.Fatalf("%s: connection %d rebuilt from its first segment differs: %s", path, c.ID,
					firstDiff(reflect.ValueOf(&w).Elem(), reflect.ValueOf(&g).Elem(), "Conn"))
			}
		}
		src.Close()
	}
	if n < 100 {
		t.Errorf("only %d connections checked", n)
	}
}

// zrowType is the type of a Zeek view's rows (unexported in package zeek; packing must keep
// every field of it all the same).
var zrowType = func() reflect.Type {
	f, _ := reflect.TypeOf(zeek.View{}).FieldByName("rows")
	return f.Type.Elem().Elem()
}()

// setZeekRow gives z one row with these start and last times (Zeek's own int64 nanoseconds).
func setZeekRow(z *zeek.View, start, last int64) {
	rows := settable(reflect.ValueOf(z).Elem().FieldByName("rows"))
	r := reflect.New(zrowType)
	settable(r.Elem().FieldByName("start")).SetInt(start)
	settable(r.Elem().FieldByName("lastTime")).SetInt(last)
	rows.Set(reflect.Append(reflect.MakeSlice(rows.Type(), 0, 1), r))
}
