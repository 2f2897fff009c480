package capture

import "github.com/gopacket/gopacket"

// liveDecode decodes one captured frame into seg, the way every live source does, and counts it
// in st: it reports whether seg is a TCP segment (stamped with the capture time and its number,
// record, in the capture).
func liveDecode(d *decoder, st *Stats, link uint16, data []byte, ci *gopacket.CaptureInfo, record uint64, seg *Segment) bool {
	switch d.decode(link, data, ci.Length, seg) {
	case isTCP:
		seg.Time = ci.Timestamp
		seg.Packet = record
		if seg.Truncated {
			st.Truncated++
		}
		st.TCP++
		return true
	case isFragment:
		st.Fragments++
	case truncatedTCP:
		st.Truncated++
		st.NonTCP++
	default:
		st.NonTCP++
	}
	return false
}
