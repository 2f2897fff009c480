package capture

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corpusCase is what reading one file of the shared corpus must give.
type corpusCase struct {
	name    string // under ../shared/pcaps
	records int    // records read (up to the damage, for damaged files)
	tcp     int    // segments delivered
	// tcpdump is the count printed by `tcpdump -nr FILE tcp | wc -l` (tcpdump 4.99, libpcap
	// 1.10) when this table was made, or by the expression or tool the note names. Where it
	// differs from tcp, the note says why.
	tcpdump int
	note    string
}

var corpus = []corpusCase{
	{"public/cs_http_dvwa_sqlinjection.pcapng", 35, 35, 35, ""},
	{"public/cs_http_ip4and6.pcapng", 20, 20, 20, ""},
	{"public/cs_nowebaccess2.pcapng", 8, 6, 6, ""},
	{"public/cs_nowebaccess3.pcapng", 5, 3, 3, ""},
	{"public/cs_synscan.pcapng", 2011, 2011, 2011, ""},
	{"public/cs_tcp_handshake.pcapng", 3, 3, 3, ""},
	{"public/cs_tcp_refuseconnection.pcapng", 2, 2, 2, ""},
	{"public/cs_tcp_teardown.pcapng", 4, 4, 4, ""},
	{"public/cs_tcp_zerowindowdead.pcapng", 8, 8, 8, ""},
	{"public/gopacket_cip_scan.pcap", 26068, 25998, 25998, ""},
	{"public/gopacket_linux_sll_oversized_addr.pcapng", 209, 208, 209, "packet 95 has TCP data offset 0: tcpdump prints \"bad hdr length\", we count it NonTCP"},
	{"public/gopacket_test202.pcapng", 8, 0, 0, "libpcap refuses mixed link types; tshark finds no TCP"},
	{"public/gopacket_test300.pcapng", 32, 32, 32, ""},
	{"public/gopacket_test901_badversion.pcapng", 1, 0, 0, "damaged (SHB version 2.0 at record 2); record 1 is BOOTP"},
	{"public/gopacket_test_ethernet.pcap", 10, 10, 10, ""},
	{"public/gopacket_test_loopback.pcap", 24, 24, 24, ""},
	{"public/sv_decode-sll2-02.pcap", 159, 159, 159, ""},
	{"public/sv_fuzz_corrupt.pcap", 1, 0, 1, "the one good record has TCP data offset 0 (NonTCP); damage at record 2"},
	{"public/sv_http-auth-unrecognized_null.pcap", 12, 12, 12, ""},
	{"public/sv_http-ipv6_null.pcap", 14, 14, 14, ""},
	{"public/sv_http-mime-truncated_cutshort.pcap", 2696, 2696, 2696, ""},
	{"public/sv_rst-unacked-stream-10.pcap", 75, 75, 75, ""},
	{"public/sv_smtp-to-comma_corrupt.pcap", 18, 18, 18, ""},
	{"public/sv_split-handshake-4whs.pcap", 7, 7, 7, ""},
	{"public/sv_split-handshake-5whs.pcap", 8, 8, 8, ""},
	{"public/sv_syn-flood.pcap", 200, 200, 200, ""},
	{"public/sv_syn_retransmit_with_ts.pcap", 254, 254, 254, "106 of them VLAN-tagged: tcpdump -nr F \"tcp or (vlan and tcp)\""},
	{"public/sv_tcp-rst-with-data.pcap", 8, 8, 8, "all VLAN-tagged: tcpdump -nr F \"vlan and tcp\""},
	{"public/sv_tcp_fastopen_segmentation.pcap", 20, 20, 20, ""},
	{"public/sv_testmyids-midstream.pcap", 5, 5, 5, ""},
	{"public/sv_tfo-data-on-syn-nack_rawip.pcap", 29, 29, 29, ""},
	{"public/sv_tfo_sll.pcap", 16, 16, 16, ""},
	{"public/tcptrace_6syns.pcap", 68, 68, 68, ""},
	{"public/tcptrace_dlt_null.pcap", 470, 470, 470, ""},
	{"public/tcptrace_fast_reuse.pcap", 513, 513, 513, ""},
	{"public/tcptrace_first_seg_ooo.pcap", 243, 243, 243, ""},
	{"public/tcptrace_hardware_dups.pcap", 1458, 1458, 1458, ""},
	{"public/tcptrace_http.pcap", 1270, 1270, 1270, ""},
	{"public/tcptrace_linux_cooked.pcap", 17, 17, 17, ""},
	{"public/tcptrace_long_rtt.pcap", 42, 42, 42, ""},
	{"public/tcptrace_zwnd.pcap", 26690, 26686, 26686, ""},
	{"public/td_empty.pcapng", 0, 0, 0, ""},
	{"public/td_heapoverflow-tcp_print.pcap", 1, 1, 1, ""},
	{"public/td_tcp-handshake-nano.pcap", 3, 3, 3, ""},
	{"public/td_tcp_rst_data.pcap", 1, 1, 1, ""},
	{"public/td_tfo.pcap", 14, 14, 14, ""},
	{"public/td_timestamp_invalid_micro.pcap", 3, 3, 3, ""},
	{"public/zeek_echo-connections.pcap", 82582, 82582, 82582, ""},
	{"public/zeek_empty.pcap", 0, 0, 0, ""},
	{"public/zeek_ftp_ipv6.pcap", 136, 136, 136, ""},
	{"public/zeek_http-11-request-then-cruft.pcap", 20, 20, 20, ""},
	{"public/zeek_http-qinq-0.pcap", 14, 14, 14, "QinQ: tcpdump -nr F \"vlan and vlan and tcp\""},
	{"public/zeek_http-vlan-0.pcap", 14, 14, 14, "tcpdump -nr F \"vlan and tcp\""},
	{"public/zeek_http_206_example_b.pcap", 1556, 1556, 1556, ""},
	{"public/zeek_http_basic-auth_ipv4linktype.pcap", 12, 12, 12, ""},
	{"public/zeek_http_get-gzip.pcap", 14, 14, 14, ""},
	{"public/zeek_irc-353_null.pcap", 12, 12, 12, ""},
	{"public/zeek_ldap_gap-data-missing.pcapng", 18, 18, 18, "libpcap refuses mixed snaplens; tshark -r F -Y tcp | wc -l"},
	{"public/zeek_nmap-vsn.pcap", 547, 32, 32, ""},
	{"public/zeek_smb1_transaction2_secondary_request.pcap", 16, 16, 16, ""},
	{"public/zeek_tcp_fin_retransmission.pcap", 5, 5, 5, ""},
	{"public/zeek_tcp_handshake-reorder.pcap", 14, 14, 14, ""},
	{"public/zeek_tcp_missing-syn.pcap", 21, 21, 21, ""},
	{"public/zeek_tcp_no-handshake.pcap", 1, 1, 1, ""},
	{"public/zeek_tcp_one-sided-2745.pcap", 6, 6, 6, ""},
	{"public/zeek_tcp_payload-syn_rawip.pcap", 6, 6, 6, ""},
	{"public/zeek_tcp_reassembly.pcap", 117, 117, 117, ""},
	{"public/zeek_tcp_retransmit-fast009.pcap", 39, 39, 39, ""},
	{"public/zeek_tcp_rst-inject-rae.pcap", 9, 9, 9, ""},
	{"public/zeek_tcp_ssh-dups.pcap", 377, 377, 377, ""},
	{"public/zeek_tcp_syn-synack.pcap", 2, 2, 2, ""},
	{"public/zeek_tcp_syn.pcap", 1, 1, 1, ""},
	{"public/zeek_tcp_tcp-fast-open.pcap", 16, 16, 16, ""},
	{"public/zeek_tcp_truncated-header.pcap", 24, 24, 24, ""},
	{"public/zeek_tls_ecdsa-cert.pcap", 15, 15, 15, ""},
	{"public/zeek_tls_openjdk_sll2.pcap", 6, 6, 6, ""},
	{"public/zeek_web.pcap", 24, 24, 24, ""},
	{"public/zeek_wikipedia.pcap", 136, 78, 78, ""},
	{"zeek/auth_change_session_keys.pcap", 8, 8, 8, ""},
	{"zeek/chksums_localhost-bad-chksum.pcap", 10, 10, 10, ""},
	{"zeek/ftp_ipv6.pcap", 136, 136, 136, ""},
	{"zeek/http_http-to-ssh.pcap", 13, 13, 13, ""},
	{"zeek/mixed-vlan-mpls.pcap", 47, 47, 47, "tcpdump \"tcp\" 22 + \"vlan and tcp\" 14 + \"mpls and tcp\" 11"},
	{"zeek/modbus_modbus-and-non-modbus-p502.pcap", 86, 86, 86, ""},
	{"zeek/pop3_pop3.pcap", 125, 125, 125, ""},
	{"zeek/ssh_ssh.client-side-half-duplex.pcap", 838, 838, 838, ""},
	{"zeek/ssh_ssh.pcap", 1797, 1795, 1795, ""},
	{"zeek/ssh_ssh.server-side-half-duplex.pcap", 832, 832, 832, ""},
	{"zeek/tcp_ctu-64702-888.pcap", 16, 16, 16, ""},
	{"zeek/tcp_fin_retransmission.pcap", 5, 5, 5, ""},
	{"zeek/tcp_handshake-reorder.pcap", 14, 14, 14, ""},
	{"zeek/tcp_http-on-irc-port-missing-syn.pcapng", 13, 13, 13, ""},
	{"zeek/tcp_miss_end_data.pcap", 9, 9, 9, ""},
	{"zeek/tcp_missing-syn.pcap", 21, 21, 21, ""},
	{"zeek/tcp_one-sided-2745.pcap", 6, 6, 6, ""},
	{"zeek/tcp_retransmit-fast009.pcap", 39, 39, 39, ""},
	{"zeek/tcp_retransmit-timeout.pcapng", 3, 3, 3, ""},
	{"zeek/tcp_rst-inject-rae.pcap", 9, 9, 9, ""},
	{"zeek/tcp_single-rst.pcap", 1, 1, 1, ""},
	{"zeek/tcp_ssh-dups.pcap", 377, 377, 377, ""},
	{"zeek/tcp_syn-bad.pcap", 1, 1, 1, ""},
	{"zeek/tcp_syn-then-ack-then-rst.pcap", 3, 3, 3, ""},
	{"zeek/tcp_syn-then-rst.pcap", 2, 2, 2, ""},
	{"zeek/tcp_syn-then-stuff-then-rst.pcap", 4, 4, 4, ""},
	{"zeek/tls_https-to-http.pcap", 9, 9, 9, ""},
	{"zeek/tunnels_Teredo.pcap", 78, 55, 33, "33 plain (= tcpdump) + 22 in Teredo (= Zeek's conn.log for 2001:0:4137:9e50:...)"},
	{"zeek/tunnels_gtp_gtp2_different_udp_port.pcap", 120, 78, 0, "all in GTP-U: tshark -Y \"gtp and tcp\" counts 78 (Zeek: 29+49 pkts)"},
	{"zeek/wikipedia.pcap", 136, 78, 78, ""},
}

// damaged are the corpus files that must stop with a ReadError: at which record, at which byte
// offset (checked by hand against hexdumps), and what the message must say.
var damaged = map[string]struct {
	packet uint64
	offset int64
	says   string
}{
	// 18 good records, then a record header claiming 3925868813 captured bytes at 3695.
	"public/sv_smtp-to-comma_corrupt.pcap": {19, 3695, "3925868813-byte packet, bigger than the maximum of 262144"},
	// 2696 good records, then one stray byte: a cut record header.
	"public/sv_http-mime-truncated_cutshort.pcap": {2697, 2715459, "truncated dump file"},
	// Record 1 (188 bytes) ends at 228, where a fuzzed header claims 1409179648 bytes.
	"public/sv_fuzz_corrupt.pcap": {2, 228, "1409179648-byte packet"},
	// Section 1 (SHB at 0, IDB at 100, EPB at 132) is fine; the SHB at 480 is version 2.0.
	"public/gopacket_test901_badversion.pcapng": {2, 480, "pcapng version 2.0"},
}

func TestCorpus(t *testing.T) {
	dir := sharedPcaps(t)
	known := map[string]bool{}
	for _, c := range corpus {
		known[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			r := readAll(t, []string{path}, Config{})
			if got := len(r.segs); got != c.tcp {
				t.Errorf("delivered %d TCP segments, want %d", got, c.tcp)
			}
			if c.note == "" && c.tcp != c.tcpdump {
				t.Errorf("table: tcp %d differs from tcpdump's %d without a note saying why", c.tcp, c.tcpdump)
			}
			if r.stats.Packets != uint64(c.records) {
				t.Errorf("Stats.Packets = %d, want %d", r.stats.Packets, c.records)
			}
			if r.stats.TCP != uint64(c.tcp) {
				t.Errorf("Stats.TCP = %d, want %d", r.stats.TCP, c.tcp)
			}
			if sum := r.stats.TCP + r.stats.NonTCP + r.stats.Filtered + r.stats.Fragments; sum != r.stats.Packets {
				t.Errorf("stats do not add up: %+v", r.stats)
			}
			d, isDamaged := damaged[c.name]
			switch {
			case isDamaged && len(r.errs) != 1:
				t.Errorf("want one ReadError, got %v", r.errs)
			case isDamaged:
				e := r.errs[0]
				if e.File != path || e.Packet != d.packet || e.Offset != d.offset {
					t.Errorf("ReadError at %s packet %d offset %d, want %s packet %d offset %d", e.File, e.Packet, e.Offset, path, d.packet, d.offset)
				}
				if !strings.Contains(e.Error(), d.says) {
					t.Errorf("ReadError %q does not say %q", e.Error(), d.says)
				}
				if uint64(c.records) != d.packet-1 {
					t.Errorf("table: %d records but damage at packet %d", c.records, d.packet)
				}
			case len(r.errs) != 0:
				t.Errorf("valid file gave read errors: %v", r.errs)
			default:
				if st, err := os.Stat(path); err == nil && r.stats.Bytes != st.Size() {
					t.Errorf("Stats.Bytes = %d at the end, want the file size %d", r.stats.Bytes, st.Size())
				}
			}
			checkOffsets(t, path, r.segs)
		})
	}
	// Files added to the corpus later are at least read without panics or errors.
	for _, sub := range []string{"public", "zeek"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			name := sub + "/" + e.Name()
			if known[name] || !strings.Contains(e.Name(), ".pcap") {
				continue
			}
			t.Run(name, func(t *testing.T) {
				t.Logf("not in the corpus table: checking only that it reads cleanly")
				r := readAll(t, []string{filepath.Join(dir, name)}, Config{})
				if len(r.errs) != 0 {
					t.Errorf("read errors: %v", r.errs)
				}
			})
		}
	}
}

// checkOffsets checks every segment's Packet and Offset against an independent walk of the file.
func checkOffsets(t *testing.T, path string, segs []Segment) {
	t.Helper()
	offs := recordOffsets(t, readFile(t, path))
	last := uint64(0)
	for _, s := range segs {
		if s.Packet <= last {
			t.Fatalf("packet numbers not increasing: %d after %d", s.Packet, last)
		}
		last = s.Packet
		if s.Packet > uint64(len(offs)) {
			t.Fatalf("segment from packet %d, but the file has %d records", s.Packet, len(offs))
		}
		if want := offs[s.Packet-1]; s.Offset != want {
			t.Fatalf("packet %d: Offset = %d, want %d", s.Packet, s.Offset, want)
		}
		if s.File != 0 {
			t.Fatalf("File = %d for a single input", s.File)
		}
	}
}

// TestLinkTypes checks the first TCP segment of a real capture of each link type against what
// tshark decodes from it (tshark -T fields -e ip.src -e tcp.seq_raw ...).
func TestLinkTypes(t *testing.T) {
	ap := netip.MustParseAddrPort
	cases := []struct {
		file     string
		link     string
		time     string // RFC 3339 with nanoseconds
		src, dst netip.AddrPort
		seq      uint32
		flags    Flags
		payload  uint32
		mss      uint16
		tsval    uint32
	}{
		{"public/gopacket_test_ethernet.pcap", "EN10MB", "2017-12-13T22:28:59.656584Z", ap("10.1.1.2:44644"), ap("10.1.1.1:80"), 2471086128, SYN, 0, 1460, 1032819631},
		{"public/zeek_http-vlan-0.pcap", "EN10MB 802.1Q", "2013-03-07T21:42:06.869344Z", ap("141.142.228.5:59856"), ap("192.150.187.43:80"), 4263588410, SYN, 0, 1460, 374005024},
		{"public/zeek_http-qinq-0.pcap", "EN10MB QinQ", "2013-03-07T21:42:06.869344Z", ap("141.142.228.5:59856"), ap("192.150.187.43:80"), 4263588410, SYN, 0, 1460, 374005024},
		{"public/tcptrace_linux_cooked.pcap", "LINUX_SLL", "2001-05-23T20:46:25.42621Z", ap("212.38.233.159:1355"), ap("209.10.41.242:21"), 4046604229, ACK | PSH, 6, 0, 525857},
		{"public/zeek_tls_openjdk_sll2.pcap", "LINUX_SLL2", "2026-04-15T08:52:08.835142Z", ap("192.168.64.6:55058"), ap("192.0.78.150:443"), 974184494, SYN, 0, 1460, 2621143545},
		{"public/zeek_tcp_payload-syn_rawip.pcap", "RAW", "2019-08-30T14:13:36.436962Z", ap("192.168.0.1:80"), ap("192.168.0.2:80"), 10, SYN, 100, 0, 0},
		{"public/zeek_http_basic-auth_ipv4linktype.pcap", "IPV4", "2024-08-28T07:56:29.595534Z", ap("172.24.133.205:43090"), ap("172.24.133.205:8000"), 11897819, SYN, 0, 65495, 1724347962},
		{"public/zeek_irc-353_null.pcap", "NULL IPv6 (AF 30)", "2018-09-13T00:17:52.42841Z", ap("[::1]:65388"), ap("[::1]:6666"), 1705058225, SYN, 0, 16324, 851844144},
		{"public/gopacket_test_loopback.pcap", "NULL IPv6", "2013-01-06T17:22:32.275121Z", ap("[::1]:58799"), ap("[::1]:8080"), 144119398, ACK | PSH, 484, 0, 96505084},
		{"public/tcptrace_dlt_null.pcap", "NULL IPv4", "1997-09-05T17:47:33.254875Z", ap("10.0.0.3:1479"), ap("10.0.0.4:9000"), 638336000, SYN, 0, 1392, 311470},
		{"public/td_tcp-handshake-nano.pcap", "LINUX_SLL, nanosecond pcap", "2014-12-09T17:16:09.924505488Z", ap("131.155.215.69:46656"), ap("137.116.81.94:80"), 797190859, SYN, 0, 1360, 1131021154},
		{"public/tcptrace_6syns.pcap", "EN10MB, big-endian pcap", "1998-11-02T18:22:01.021516Z", ap("132.235.67.20:4333"), ap("132.235.67.34:9080"), 1637145948, SYN, 0, 1460, 1748113},
		{"public/gopacket_test300.pcapng", "pcapng, if_tsresol 9", "2022-08-01T03:02:36.126474549Z", ap("172.16.71.4:46920"), ap("112.80.248.76:443"), 3137687444, SYN, 0, 1460, 3212424882},
		{"public/zeek_ldap_gap-data-missing.pcapng", "pcapng, 126 IDBs of mixed link types", "2024-09-10T11:08:14.956327Z", ap("[2a00:6020:ad0b:8381:fd70:e2f9:f031:9dc4]:49980"), ap("[2a00:6020:ad0b:8380::10]:389"), 3763538959, SYN, 0, 1440, 0},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			r := readAll(t, []string{corpusFile(t, c.file)}, Config{})
			if len(r.segs) == 0 {
				t.Fatalf("%s: no segments", c.link)
			}
			s := r.segs[0]
			want, _ := time.Parse(time.RFC3339Nano, c.time)
			if !s.Time.Equal(want) {
				t.Errorf("%s: time %s, want %s", c.link, s.Time.Format(time.RFC3339Nano), c.time)
			}
			if s.Src != c.src || s.Dst != c.dst || s.Seq != Seq(c.seq) || s.Flags != c.flags || s.PayloadLen != c.payload {
				t.Errorf("%s: got %v > %v seq %d [%v] len %d, want %v > %v seq %d [%v] len %d",
					c.link, s.Src, s.Dst, s.Seq, s.Flags, s.PayloadLen, c.src, c.dst, c.seq, c.flags, c.payload)
			}
			if c.mss != 0 && (s.Opts.Has&HasMSS == 0 || s.Opts.MSS != c.mss) {
				t.Errorf("%s: MSS %d (has %v), want %d", c.link, s.Opts.MSS, s.Opts.Has&HasMSS != 0, c.mss)
			}
			if c.tsval != 0 && (s.Opts.Has&HasTimestamps == 0 || s.Opts.TSVal != c.tsval) {
				t.Errorf("%s: TSval %d, want %d", c.link, s.Opts.TSVal, c.tsval)
			}
		})
	}
}

// TestSnaplenTruncatedOptions reads Zeek's truncated-header trace: the snaplen cut the first
// SYN's options (68 bytes captured of a 40-byte TCP header).
func TestSnaplenTruncatedOptions(t *testing.T) {
	r := readAll(t, []string{corpusFile(t, "public/zeek_tcp_truncated-header.pcap")}, Config{})
	if len(r.segs) != 24 {
		t.Fatalf("%d segments, want 24", len(r.segs))
	}
	s := r.segs[0]
	if !s.Truncated {
		t.Errorf("first SYN not marked Truncated")
	}
	// tcpdump: options [mss 1460,sackOK,TS [|tcp]>: the timestamp option is cut.
	if s.Opts.Has != HasMSS|HasSACKPerm || s.Opts.MSS != 1460 {
		t.Errorf("options = %+v, want MSS 1460 and SACK-permitted only", s.Opts)
	}
	if s.Flags != SYN|ECE|CWR || s.PayloadLen != 0 || s.IPLen != 60 {
		t.Errorf("flags %v payload %d iplen %d, want SEW 0 60", s.Flags, s.PayloadLen, s.IPLen)
	}
	if r.stats.Truncated != 1 {
		t.Errorf("Stats.Truncated = %d, want 1", r.stats.Truncated)
	}
	// Payload lengths come from the IP header although the snaplen cut the payloads:
	// tcpdump says "seq 1:85 ... length 84" for the fourth packet.
	if s := r.segs[3]; s.PayloadLen != 84 || s.Truncated {
		t.Errorf("packet 4: payload %d truncated %v, want 84 false", s.PayloadLen, s.Truncated)
	}
}

// TestTimeGoingBackwards reads a file whose timestamps are invalid (microseconds >= 10^6) and
// go backwards, merged with a sane file: nothing is lost and each file keeps its own order.
func TestTimeGoingBackwards(t *testing.T) {
	bad := corpusFile(t, "public/td_timestamp_invalid_micro.pcap")
	good := corpusFile(t, "public/td_tcp-handshake-nano.pcap")
	r := readAll(t, []string{bad, good}, Config{})
	if len(r.segs) != 6 || len(r.errs) != 0 {
		t.Fatalf("%d segments, errors %v; want 6, none", len(r.segs), r.errs)
	}
	next := [2]uint64{1, 1}
	for _, s := range r.segs {
		if s.Packet != next[s.File] {
			t.Errorf("file %d: packet %d, want %d", s.File, s.Packet, next[s.File])
		}
		next[s.File]++
	}
}

func TestReadErrorUnwrap(t *testing.T) {
	r := readAll(t, []string{corpusFile(t, "public/sv_http-mime-truncated_cutshort.pcap")}, Config{})
	if len(r.errs) != 1 || !errors.Is(r.errs[0], io.ErrUnexpectedEOF) {
		t.Fatalf("want a ReadError wrapping io.ErrUnexpectedEOF, got %v", r.errs)
	}
}
