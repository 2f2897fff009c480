package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/tracker"
	"github.com/tcpstate/tcpstate/zeek"
)

// TunnelName is the word used for a tunnel kind in the table, JSON and Zeek output.
func TunnelName(k capture.TunnelKind) string {
	return [...]string{"", "ip-in-ip", "gre", "vxlan", "geneve", "teredo", "gtp-u", "mpls"}[min(int(k), 7)]
}

var zeekFields = []string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration",
	"orig_bytes", "resp_bytes", "conn_state", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes",
	"resp_pkts", "resp_ip_bytes"}

var zeekTypes = []string{"time", "string", "addr", "port", "addr", "port", "enum", "interval", "count", "count",
	"string", "count", "string", "count", "count", "count", "count"}

// zeekRows are the conn.log rows of one connection, Zeek's originator first in each. Zeek may
// split what we track as one connection into several (its timers end a connection and the
// next packet starts another), so there can be more than one. A nil field is unset ("-"):
// like Zeek, duration and the byte counts are left unset when the duration is zero.
func zeekRows(c *tracker.Conn) [][]any {
	var out [][]any
	for i, z := range c.Zeek.Rows() {
		oe, re := c.Client.Addr, c.Server.Addr
		if z.Orig == zeek.Server {
			oe, re = re, oe
		}
		uid := fmt.Sprintf("C%d", c.ID)
		if i > 0 {
			uid = fmt.Sprintf("C%d-%d", c.ID, z.N)
		}
		var dur, ob, rb any
		if d := z.Duration(); d > 0 {
			dur, ob, rb = d.Seconds(), z.Bytes[0], z.Bytes[1]
		}
		out = append(out, []any{float64(z.Start.UnixNano()) / 1e9, uid, oe.Addr().String(), oe.Port(),
			re.Addr().String(), re.Port(), "tcp", dur, ob, rb, z.ConnState, z.MissedBytes, z.History,
			z.Pkts[0], z.IPBytes[0], z.Pkts[1], z.IPBytes[1]})
	}
	return out
}

// WriteZeek writes a Zeek conn.log (TSV with its #fields header).
func WriteZeek(w io.Writer, conns []*tracker.Conn) error {
	var b strings.Builder
	b.WriteString(zeekHeader())
	for _, c := range conns {
		writeZeekRows(&b, c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// zeekHeader is conn.log's header.
func zeekHeader() string {
	return "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" +
		"#fields\t" + strings.Join(zeekFields, "\t") + "\n" +
		"#types\t" + strings.Join(zeekTypes, "\t") + "\n"
}

// writeZeekRows writes c's conn.log rows.
func writeZeekRows(b *strings.Builder, c *tracker.Conn) {
	for _, row := range zeekRows(c) {
		for i, v := range row {
			if i > 0 {
				b.WriteByte('\t')
			}
			switch x := v.(type) {
			case nil:
				b.WriteString("-")
			case float64:
				fmt.Fprintf(b, "%.6f", x)
			case string:
				if x == "" {
					x = "-"
				}
				b.WriteString(x)
			default:
				fmt.Fprint(b, x)
			}
		}
		b.WriteByte('\n')
	}
}

// WriteZeekJSON writes the same rows as Zeek's JSON logs do.
func WriteZeekJSON(w io.Writer, conns []*tracker.Conn) error {
	enc := json.NewEncoder(w)
	for _, c := range conns {
		if err := writeZeekJSONRows(enc, c); err != nil {
			return err
		}
	}
	return nil
}

func writeZeekJSONRows(enc *json.Encoder, c *tracker.Conn) error {
	for _, row := range zeekRows(c) {
		m := make(map[string]any, len(row))
		for i, v := range row {
			if v != nil { // Zeek leaves unset fields out of its JSON logs
				m[zeekFields[i]] = v
			}
		}
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	return nil
}
