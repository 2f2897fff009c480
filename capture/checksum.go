package capture

import "encoding/binary"

// Internet checksum (RFC 1071) helpers. The ones'-complement sum of 16-bit words equals the
// sum of 32-bit words folded to 16 bits (2^16 ≡ 1 mod 0xffff), so we add 32-bit words into a
// 64-bit accumulator, which cannot overflow for any packet we can see, and fold once.

// sum32 adds b, as big-endian 16-bit words (an odd last byte padded with zero), to acc.
func sum32(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	if len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold reduces a sum to 16 bits with end-around carry. A correct checksum folds to 0xffff.
func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = (acc & 0xffff) + (acc >> 16)
	}
	return uint16(acc)
}
