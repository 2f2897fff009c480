package pack

import (
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// fields is one of everything a Codec writes.
type fields struct {
	u    uint64
	i    int64
	b    bool
	bs   [3]bool
	s    string
	d    string
	by   []byte
	t    time.Time
	dur  time.Duration
	seq  [3]capture.Seq
	sqf  [3]capture.Seq // SeqFrom fields, against one base
	st   [3]uint64      // stamps
	def  int32
	ap   netip.AddrPort
	u8   uint8
	i16  int16
	more bool // a block
	in   uint64
}

func (f *fields) visit(k *Codec, in *Interner) {
	Uint(k, &f.u)
	Int(k, &f.i)
	k.Bool(&f.b)
	k.String(&f.s)
	k.Dict(&f.d, in)
	k.Bytes(&f.by)
	k.SetBase(time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC))
	k.Time(&f.t)
	k.Bools(&f.bs[0], &f.bs[1], &f.bs[2])
	k.Dur(&f.dur)
	for i := range f.seq {
		k.Seq(&f.seq[i])
	}
	var base capture.Seq // zero, as the fields of a zero value
	for i := range f.sqf {
		k.SeqFrom(&f.sqf[i], &base)
	}
	for i := range f.st {
		Stamp(k, &f.st[i])
	}
	Default(k, &f.def, 7)
	k.AddrPort(&f.ap)
	Uint(k, &f.u8)
	Int(k, &f.i16)
	if k.Block(f.more) {
		f.more = true
		Uint(k, &f.in)
	}
}

func TestRoundTrip(t *testing.T) {
	cases := []fields{
		{},
		{u: math.MaxUint64, i: math.MinInt64, b: true, s: "é\x00<", d: "interned", by: []byte{0, 1},
			bs: [3]bool{true, false, true}, t: time.Unix(1<<40, 999999999).UTC(), dur: math.MaxInt64, seq: [3]capture.Seq{0, math.MaxUint32, 1},
			st: [3]uint64{1, math.MaxUint64, 1 << 63}, def: 7, ap: netip.MustParseAddrPort("[fe80::1%eth0]:65535"), u8: 255, i16: -32768,
			more: true, in: 1, sqf: [3]capture.Seq{1 << 31, 0, math.MaxUint32}},
		{i: math.MaxInt64, bs: [3]bool{false, false, true}, t: time.Unix(-1<<40, 1).UTC(), dur: math.MinInt64, st: [3]uint64{math.MaxUint64, 1, 2}, def: math.MinInt32,
			ap: netip.MustParseAddrPort("192.0.2.1:0"), seq: [3]capture.Seq{5, 5, 4}, sqf: [3]capture.Seq{7, 1<<31 + 200, 1 << 31}},
		{t: time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC), dur: 5 * time.Second, by: []byte{},
			st: [3]uint64{1<<63 + 1e9, 1<<63 + 1e9, 0}},
		{t: time.Date(2052, 1, 2, 3, 4, 5, 0, time.UTC), dur: 1500 * time.Microsecond,
			st: [3]uint64{0, 1<<63 + 1577934245000001000, 1<<63 + 1577934245000000000}},
	}
	var in Interner
	for i, want := range cases {
		var k Codec
		k.Reset(true, nil)
		want.visit(&k, &in)
		blob := string(k.Encoded())
		var got fields
		k.ResetString(blob)
		got.visit(&k, &in)
		if k.Pos() != len(blob) {
			t.Errorf("case %d: decoding read %d of %d bytes", i, k.Pos(), len(blob))
		}
		if len(want.by) == 0 {
			want.by = nil
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("case %d:\n  want %+v\n  got  %+v", i, want, got)
		}
	}
}

// TestInterner: strings beyond what the interner numbers are written out, and still decode.
func TestInterner(t *testing.T) {
	var in Interner
	var k Codec
	k.Reset(true, nil)
	strs := make([]string, maxInterned+10)
	for i := range strs {
		strs[i] = fmt.Sprint("s", i%(maxInterned+5))
		k.Dict(&strs[i], &in)
	}
	blob := string(k.Encoded())
	k.ResetString(blob)
	for i, want := range strs {
		var got string
		k.Dict(&got, &in)
		if got != want {
			t.Fatalf("string %d: %q, want %q", i, got, want)
		}
	}
}

// TestCompact: zero fields cost a bit each (a mask of four bytes per 32 of them).
func TestCompact(t *testing.T) {
	var k Codec
	k.Reset(true, nil)
	f := fields{def: 7}
	f.visit(&k, &Interner{})
	if len(k.Buf) > 4 {
		t.Errorf("an all-zero value takes %d bytes", len(k.Buf))
	}
}

// TestVarints: numbers of every length survive, take a byte per seven bits (nine bytes above
// 56 bits), and decode from a string, from a slice with room after it and from one without.
func TestVarints(t *testing.T) {
	var nums []uint64
	for n := range 65 {
		if n > 0 {
			nums = append(nums, 1<<(n-1), 1<<(n-1)+1)
		}
		nums = append(nums, 1<<n-1)
	}
	var k Codec
	k.Reset(true, nil)
	size := 0
	for i := range nums {
		Uint(&k, &nums[i])
		if nums[i] != 0 {
			size += min(max((bits.Len64(nums[i])+6)/7, 1), 9)
		}
	}
	blob := k.Encoded()
	if masks := (len(nums) + groupSize - 1) / groupSize * groupSize / 8; len(blob) != size+masks {
		t.Errorf("%d numbers take %d bytes, want %d", len(nums), len(blob), size+masks)
	}
	roomy := append(make([]byte, 0, len(blob)+wordRoom), blob...)
	tight := slices.Clip(slices.Clone(blob))
	for _, from := range []string{"string", "roomy", "tight"} {
		switch from {
		case "string":
			k.ResetString(string(blob))
		case "roomy":
			k.Reset(false, roomy)
		case "tight":
			k.Reset(false, tight)
		}
		for i, want := range nums {
			var got uint64
			Uint(&k, &got)
			if got != want {
				t.Fatalf("from a %s, number %d: %#x, want %#x", from, i, got, want)
			}
		}
		if k.Pos() != len(blob) {
			t.Errorf("from a %s, decoding read %d of %d bytes", from, k.Pos(), len(blob))
		}
	}
}

// TestLong: many fields, with strings of any length between them, survive (the encoding grows
// its buffer, and keeps room for fields, as it goes).
func TestLong(t *testing.T) {
	type field struct {
		s string
		u uint64
		t time.Time
	}
	fields := make([]field, 1000)
	for i := range fields {
		fields[i] = field{strings.Repeat("x", i%300), uint64(i) << (i % 64),
			time.Unix(int64(i)<<(i%40), int64(i*7919)%1e9).UTC()}
	}
	visit := func(k *Codec, fs []field) {
		k.SetBase(time.Unix(1e9, 0))
		for i := range fs {
			k.String(&fs[i].s)
			Uint(k, &fs[i].u)
			k.Time(&fs[i].t)
		}
	}
	var k Codec
	k.Reset(true, nil)
	visit(&k, fields)
	blob := string(k.Encoded())
	got := make([]field, len(fields))
	k.ResetString(blob)
	visit(&k, got)
	if !reflect.DeepEqual(got, fields) {
		for i := range got {
			if got[i] != fields[i] {
				t.Fatalf("field %d: %+v, want %+v", i, got[i], fields[i])
			}
		}
	}
	if k.Pos() != len(blob) {
		t.Errorf("decoding read %d of %d bytes", k.Pos(), len(blob))
	}
}

// TestBools: booleans visited at once survive wherever they fall in the mask's groups (across
// the end of one too), and take exactly the bits they take visited one by one.
func TestBools(t *testing.T) {
	for lead := range 2*groupSize + 1 {
		for n := 1; n <= groupSize; n++ {
			bs := make([]bool, n)
			ps := make([]*bool, n)
			for i := range bs {
				bs[i] = (i*7+lead+n)%3 != 0
				ps[i] = &bs[i]
			}
			// lead fields before them (set or not, written or not), one after them.
			visit := func(k *Codec, ps []*bool, together bool) (after uint64) {
				for i := range lead {
					v := uint64(i % 3)
					Uint(k, &v)
				}
				if together {
					k.Bools(ps...)
				} else {
					for _, p := range ps {
						k.Bool(p)
					}
				}
				after = 77
				Uint(k, &after)
				return after
			}
			var k Codec
			k.Reset(true, nil)
			visit(&k, ps, false)
			want := string(k.Encoded())
			k.Reset(true, nil)
			visit(&k, ps, true)
			blob := string(k.Encoded())
			if blob != want {
				t.Fatalf("%d booleans after %d fields: encoded %x, one by one %x", n, lead, blob, want)
			}
			got := make([]bool, n)
			for i := range got {
				ps[i] = &got[i]
				got[i] = !bs[i] // decoding sets them all
			}
			k.ResetString(blob)
			if after := visit(&k, ps, true); !slices.Equal(got, bs) || after != 77 || k.Pos() != len(blob) {
				t.Fatalf("%d booleans after %d fields: decoded %v (then %d, at %d of %d), want %v", n, lead,
					got, after, k.Pos(), len(blob), bs)
			}
		}
	}
}
