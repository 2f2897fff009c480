package capture

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestFilter applies tcpdump expressions to files of every link type. Want counts are what
// `tcpdump -nr FILE EXPR | wc -l` printed (tshark for pcapng with mixed link types); every
// matching packet in these files is TCP, so they are also the segments delivered.
func TestFilter(t *testing.T) {
	cases := []struct {
		file, expr string
		want       int
	}{
		{"public/tcptrace_http.pcap", "port 80", 1270}, // big-endian pcap
		{"public/zeek_nmap-vsn.pcap", "tcp[tcpflags] & tcp-syn != 0", 20},
		{"public/zeek_nmap-vsn.pcap", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", 17},
		{"public/zeek_irc-353_null.pcap", "ip6", 2}, // DLT_NULL, AF 30
		{"public/zeek_irc-353_null.pcap", "ip", 10},
		{"public/sv_http-ipv6_null.pcap", "ip6", 14},
		{"public/zeek_tcp_payload-syn_rawip.pcap", "src host 192.168.0.1", 4}, // LINKTYPE_RAW compiled as DLT_RAW
		{"public/zeek_http-vlan-0.pcap", "vlan and tcp port 80", 14},
		{"public/zeek_http-vlan-0.pcap", "tcp port 80", 0}, // as tcpdump: "vlan" must be said
		{"public/zeek_tls_openjdk_sll2.pcap", "tcp port 443 and tcp[tcpflags] & tcp-push != 0", 2},
		{"public/zeek_http_basic-auth_ipv4linktype.pcap", "dst port 8000", 6},
		{"public/tcptrace_linux_cooked.pcap", "port 21", 9},
		// `greater`/`less` test the wire length, which the pure-Go VM does not know for
		// snaplen-cut packets: these run through libpcap's matcher instead.
		{"public/zeek_http_206_example_b.pcap", "greater 1000", 984},
		{"public/zeek_http_206_example_b.pcap", "less 100", 557},
		{"public/tcptrace_zwnd.pcap", "greater 1000", 14986}, // snaplen-truncated
		// pcapng whose packets are on interface 48 of 126 (mixed link types).
		{"public/zeek_ldap_gap-data-missing.pcapng", "vlan and tcp dst port 389", 10},
	}
	for _, c := range cases {
		t.Run(c.file+" "+c.expr, func(t *testing.T) {
			all := readAll(t, []string{corpusFile(t, c.file)}, Config{})
			r := readAll(t, []string{corpusFile(t, c.file)}, Config{Filter: c.expr})
			if len(r.segs) != c.want {
				t.Errorf("%d segments pass, want %d", len(r.segs), c.want)
			}
			if r.stats.Packets != all.stats.Packets || r.stats.Filtered != all.stats.Packets-uint64(c.want)-r.stats.NonTCP {
				t.Errorf("stats %+v: want %d packets, %d filtered", r.stats, all.stats.Packets, all.stats.Packets-uint64(c.want))
			}
		})
	}
}

// TestFilterMatchesDecoder checks the SYN filter against the decoder's own flags, packet by packet.
func TestFilterMatchesDecoder(t *testing.T) {
	f := corpusFile(t, "public/gopacket_cip_scan.pcap")
	all := readAll(t, []string{f}, Config{})
	syn := readAll(t, []string{f}, Config{Filter: "tcp[tcpflags] & tcp-syn != 0"})
	var want []uint64
	for _, s := range all.segs {
		if s.Flags.Has(SYN) {
			want = append(want, s.Packet)
		}
	}
	if len(syn.segs) != len(want) {
		t.Fatalf("%d SYNs through the filter, %d decoded", len(syn.segs), len(want))
	}
	for i, s := range syn.segs {
		if s.Packet != want[i] {
			t.Fatalf("SYN %d: packet %d passed, want %d", i, s.Packet, want[i])
		}
	}
}

func TestFilterInvalid(t *testing.T) {
	_, err := OpenFiles([]string{corpusFile(t, "public/gopacket_test_ethernet.pcap")}, Config{Filter: "port eighty"})
	if err == nil {
		t.Fatal("no error for a bad expression")
	}
	for _, s := range []string{`bad filter expression "port eighty"`, "eighty"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	// The expression is checked before any file is opened.
	_, err = OpenFiles([]string{"/nonexistent.pcap"}, Config{Filter: "tcp and and"})
	if err == nil || !strings.Contains(err.Error(), "bad filter expression") {
		t.Errorf("error %v, want a filter error", err)
	}
}

// TestFilterByteOrderNull: libpcap compiles DLT_NULL filters for the host's byte order; a
// DLT_NULL file written on a machine of the other order must filter the same.
func TestFilterByteOrderNull(t *testing.T) {
	name := corpusFile(t, "public/zeek_irc-353_null.pcap")
	link, recs := parsePcap(t, readFile(t, name))
	for i := range recs {
		af := binary.LittleEndian.Uint32(recs[i].data)
		binary.BigEndian.PutUint32(recs[i].data, af)
	}
	swapped := writeTemp(t, "be.pcap", buildPcap(link, recs, binary.BigEndian, false))
	for _, c := range []struct {
		expr string
		want int
	}{{"ip6", 2}, {"ip", 10}, {"tcp port 6666", 12}} {
		if r := readAll(t, []string{swapped}, Config{Filter: c.expr}); len(r.segs) != c.want {
			t.Errorf("%q on a big-endian DLT_NULL file: %d segments, want %d", c.expr, len(r.segs), c.want)
		}
	}
	// LOOP (108) has the family in network order; files with it in host order decode too.
	loop := writeTemp(t, "loop.pcap", buildPcap(linkLoop, recs, binary.LittleEndian, false))
	if r := readAll(t, []string{loop}, Config{Filter: "ip6"}); len(r.segs) != 2 {
		t.Errorf("ip6 on DLT_LOOP: %d segments, want 2", len(r.segs))
	}
}

// A link type libpcap cannot compile the expression for (here 274, which the zeek trace's
// other interfaces use) rejects that interface's packets rather than failing the read.
func TestFilterUncompilableLinkType(t *testing.T) {
	f, err := newFilter("tcp")
	if err != nil {
		t.Fatal(err)
	}
	if f.match(274, make([]byte, 64), 64) {
		t.Errorf("packet of an uncompilable link type passed")
	}
	if !f.match(linkEthernet, tcpFrame(t), 74) {
		t.Errorf("Ethernet TCP frame rejected after switching link types")
	}
}
