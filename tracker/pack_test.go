package tracker

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
	"github.com/tcpstate/tcpstate/internal/reflectfill"
	"github.com/tcpstate/tcpstate/zeek"
)

// skipped are the fields packing leaves out on purpose: the tracker's own bookkeeping and the
// configuration pointers that unpacking sets back.
func skipped(owner reflect.Type, field string) bool {
	switch owner {
	case reflect.TypeOf(Conn{}):
		return false
	case reflect.TypeOf(Diagnosis{}):
		return field == "ID" // not packed: its detail's kind names it (diag)
	case reflect.TypeOf(zeek.View{}), zrowType:
		return field == "cfg"
	}
	return false
}
func roundTrip(t *testing.T, c *Conn, what string) {
	t.Helper()
	roundTripInto(t, c, &Conn{}, what)
}

// roundTripInto packs c and unpacks it into got, which must come out equal to c.
func roundTripInto(t *testing.T, c, got *Conn, what string) {
	t.Helper()
	var k pack.Codec
	var in pack.Interner
	k.Reset(true, nil)
	c.Pack(&k, &in)
	k.ResetString(string(k.Encoded()))
	got.Pack(&k, &in)
	// The flow table writes these in the blob's head (flowtable's codecState), not Pack.
	got.ID, got.Client.Addr, got.Server.Addr = c.ID, c.Client.Addr, c.Server.Addr
	// A diagnosis's ID comes back as its detail's kind's, as the tracker makes them (diag).
	for i := range c.Diagnoses {
		c.Diagnoses[i].ID = c.Diagnoses[i].Detail.Kind.ID()
	}
	// Both Zeek views are bound to nil (the filler skips cfg, unpackConn binds zcfg nil).
	reflectfill.Normalize(reflect.ValueOf(c).Elem())
	reflectfill.Normalize(reflect.ValueOf(got).Elem())
	if !reflect.DeepEqual(c, got) {
		t.Errorf("%s does not survive packing: %s", what, reflectfill.FirstDiff(reflect.ValueOf(c).Elem(), reflect.ValueOf(got).Elem(), "Conn"))
	}
}

// TestPackRoundTrip: a packed connection unpacks to exactly what was packed, every field of it
// (unexported, nested, in other packages) set at once, and each set alone, so that a field
// packing forgets, or a "nothing here" shortcut that overlooks it, fails here.
func TestPackRoundTrip(t *testing.T) {
	all := reflectfill.NewFiller(-1, skipped)
	var c Conn
	all.Fill(reflect.ValueOf(&c).Elem())
	roundTrip(t, &c, "a connection with every field set")
	for i := 0; i < all.N(); i++ {
		f := reflectfill.NewFiller(i, skipped)
		var c Conn
		f.Fill(reflect.ValueOf(&c).Elem())
		roundTrip(t, &c, "field "+f.Name())
	}
	if all.N() < 200 {
		t.Errorf("only %d fields found: the filler does not reach them all", all.N())
	}
}

// TestPackOverwrites: unpacking sets every field, zero ones and those of blocks that were left
// out included, so that a Conn taken from a pool (and the Zeek rows it keeps) holds nothing of
// what it held: a connection with each field set alone is unpacked into one with every field
// set.
func TestPackOverwrites(t *testing.T) {
	all := reflectfill.NewFiller(-1, skipped)
	all.Fill(reflect.ValueOf(&Conn{}).Elem())
	for i := -1; i < all.N(); i++ {
		f := reflectfill.NewFiller(i, skipped)
		var c, dirty Conn
		f.Fill(reflect.ValueOf(&c).Elem())
		(reflectfill.NewFiller(-1, skipped)).Fill(reflect.ValueOf(&dirty).Elem())
		what := "a connection with every field set"
		if i >= 0 {
			what = "field " + f.Name()
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
			setZeekRow(&c.Zeek, capture.TimeOf(x), capture.TimeOf(x).Add(-time.Duration(x.UnixNano())))
			c.Client.ev.firstSYN, c.Client.ev.lastSYN, c.Server.ev.tReset = capture.TimeOf(x), capture.TimeOf(x), capture.TimeOf(x).Add(-1)
			c.synTime[1], c.lastData = capture.TimeOf(x), capture.TimeMax
			c.Server.ev.tGotFIN = capture.TimeMin
			roundTrip(t, &c, fmt.Sprintf("time %v with base %v", x, b))
		}
	}
}

// zrowType is the type of a Zeek view's rows (unexported in package zeek; packing must keep
// every field of it all the same).
var zrowType = func() reflect.Type {
	f, _ := reflect.TypeOf(zeek.View{}).FieldByName("rows")
	return f.Type.Elem().Elem()
}()

// setZeekRow gives z one row with these start and last times.
func setZeekRow(z *zeek.View, start, last capture.Time) {
	rows := reflectfill.Settable(reflect.ValueOf(z).Elem().FieldByName("rows"))
	r := reflect.New(zrowType)
	reflectfill.Settable(r.Elem().FieldByName("start")).SetUint(uint64(start))
	reflectfill.Settable(r.Elem().FieldByName("lastTime")).SetUint(uint64(last))
	rows.Set(reflect.Append(reflect.MakeSlice(rows.Type(), 0, 1), r))
}
