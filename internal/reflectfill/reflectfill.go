// Package reflectfill is test support for round-trip tests of packed values (tracker's Conn,
// flowtable's segments): it sets every field of a value through reflection, unexported ones
// included, one leaf at a time or all at once, and names the first field where two values
// differ. Only tests import it.
package reflectfill

import (
	"fmt"
	"net/netip"
	"reflect"
	"time"
	"unsafe"
)

// Filler sets the fields of a value through reflection, unexported ones included: every leaf
// (a number, bool, string, time, address) gets a value of its own, or only the leaf numbered
// only (when it is not negative). Slices get one element (when only is set, only the slice
// that holds the leaf), pointers a value.
type Filler struct {
	only int // the one leaf to set; -1: all
	n    int // leaves seen so far
	path []string
	name string // the path of the leaf that was set, when only >= 0
	// Skip, if set, names the fields to leave alone (owner is the struct type).
	Skip func(owner reflect.Type, field string) bool
}

// NewFiller returns a Filler that sets only the leaf numbered only (-1: every leaf), leaving
// the fields skip names alone.
func NewFiller(only int, skip func(owner reflect.Type, field string) bool) *Filler {
	return &Filler{only: only, Skip: skip}
}

// N is the number of leaves seen so far; Name, the path of the one leaf set (when only >= 0).
func (f *Filler) N() int       { return f.n }
func (f *Filler) Name() string { return f.name }

// Settable is v made settable, unexported or not.
func Settable(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

func (f *Filler) leaf(v reflect.Value, set func(k int)) {
	k := f.n
	f.n++
	if f.only < 0 || f.only == k {
		set(k)
		if f.only == k {
			f.name = fmt.Sprint(f.path)
		}
	}
}

func (f *Filler) Fill(v reflect.Value) {
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
			if f.Skip != nil && f.Skip(v.Type(), v.Type().Field(i).Name) {
				continue
			}
			f.path = append(f.path, v.Type().Field(i).Name)
			f.Fill(Settable(v.Field(i)))
			f.path = f.path[:len(f.path)-1]
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			f.path = append(f.path, fmt.Sprint(i))
			f.Fill(v.Index(i))
			f.path = f.path[:len(f.path)-1]
		}
	case reflect.Slice:
		// One element, but when only one leaf is set and not in it: then the slice stays
		// empty, as a block that holds it would be left out.
		s := reflect.MakeSlice(v.Type(), 1, 1)
		first := f.n
		f.Fill(s.Index(0))
		if f.only < 0 || first <= f.only && f.only < f.n {
			v.Set(s)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.Fill(p.Elem())
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
		panic(fmt.Sprintf("%v: a %v field: teach packing and this filler about it", f.path, v.Kind()))
	}
}

// Normalize makes empty slices nil, so that comparing tells apart only what the tracker can.
func Normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			Normalize(Settable(v.Field(i)))
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			Normalize(v.Index(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
		}
		for i := 0; i < v.Len(); i++ {
			Normalize(v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			Normalize(v.Elem())
		}
	}
}

// FirstDiff names the first field where a and b differ, with both values.
func FirstDiff(a, b reflect.Value, path string) string {
	if a.Type() == reflect.TypeOf(time.Time{}) || a.Type() == reflect.TypeOf(netip.AddrPort{}) || a.Type() == reflect.TypeOf(netip.Addr{}) {
		if ai, bi := valueOf(a), valueOf(b); !reflect.DeepEqual(ai, bi) {
			return fmt.Sprintf("%s: %#v != %#v", path, ai, bi)
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := FirstDiff(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Array, reflect.Slice:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d != %d", path, a.Len(), b.Len())
		}
		for i := 0; i < a.Len(); i++ {
			if d := FirstDiff(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
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
		return FirstDiff(a.Elem(), b.Elem(), path)
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
