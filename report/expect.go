package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tcpstate/tcpstate/tracker"
)

// Expectation is one entry of an --expect file: which connections it selects and what must
// hold for them.
type Expectation struct {
	Name string `yaml:"name"`
	// Selectors (all optional; none selects every connection). Client and Server take an
	// address, a CIDR, addr:port, [v6addr]:port, 192.0.2.0/24:80, [2001:db8::/64]:80 or :port.
	Client   string `yaml:"client"`
	Server   string `yaml:"server"`
	Port     int    `yaml:"port"`     // the server's port
	Instance int    `yaml:"instance"` // the n-th instance (1-based) of each 4-tuple
	// What must hold.
	ClientState  StringList `yaml:"client_state"`  // one of these end states
	ServerState  StringList `yaml:"server_state"`  // one of these end states
	Diagnoses    StringList `yaml:"diagnoses"`     // each must be present ("any": some problem)
	NotDiagnoses StringList `yaml:"not_diagnoses"` // none may be present ("any": no problem at all)
	Count        string     `yaml:"count"`         // how many connections must match: 3, ">=1", "<10", "0"

	line               int
	client, server     selector
	clientSt, serverSt []tracker.State
	countOp            string
	countN             int
}

// StringList accepts a single string or a list of strings.
type StringList []string

// UnmarshalYAML lets a scalar stand for a one-element list.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*l = append(*l, s)
			}
		}
		return nil
	case yaml.SequenceNode:
		var xs []string
		if err := n.Decode(&xs); err != nil {
			return err
		}
		*l = xs
		return nil
	}
	return fmt.Errorf("line %d: expected a name or a list of names", n.Line)
}

type selector struct {
	set    bool
	prefix netip.Prefix // zero: any address
	port   uint16
	// portSet: a port was given (port 0 is a port too: hostile traffic uses it).
	portSet bool
}

func parseSelector(s string) (selector, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "*" || s == "all" {
		return selector{}, nil
	}
	sel := selector{set: true}
	addr := s
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a := ap.Addr().Unmap()
		sel.prefix = netip.PrefixFrom(a, a.BitLen())
		sel.port, sel.portSet = ap.Port(), true
		return sel, nil
	}
	if strings.HasPrefix(s, ":") {
		p, err := strconv.ParseUint(s[1:], 10, 16)
		if err != nil {
			return sel, fmt.Errorf("bad port in %q", s)
		}
		sel.port, sel.portSet = uint16(p), true
		return sel, nil
	}
	if i := strings.LastIndex(s, "]:"); strings.HasPrefix(s, "[") && i > 0 {
		// [2001:db8::/64]:80 or [2001:db8::1]:80
		p, err := strconv.ParseUint(s[i+2:], 10, 16)
		if err != nil {
			return sel, fmt.Errorf("bad port in %q", s)
		}
		sel.port, sel.portSet, addr = uint16(p), true, s[1:i]
	} else if i := strings.LastIndex(s, ":"); i > 0 && strings.Count(s, ":") == 1 && strings.Contains(s[:i], "/") {
		// CIDR with a port: 192.0.2.0/24:80
		p, err := strconv.ParseUint(s[i+1:], 10, 16)
		if err != nil {
			return sel, fmt.Errorf("bad port in %q", s)
		}
		sel.port, sel.portSet, addr = uint16(p), true, s[:i]
	}
	if strings.Contains(addr, "/") {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return sel, fmt.Errorf("bad CIDR %q", addr)
		}
		sel.prefix = p.Masked()
		return sel, nil
	}
	a, err := netip.ParseAddr(strings.Trim(addr, "[]"))
	if err != nil {
		return sel, fmt.Errorf("%q is not an address, CIDR, addr:port or :port", s)
	}
	a = a.Unmap() // connections are matched by their unmapped address
	sel.prefix = netip.PrefixFrom(a, a.BitLen())
	return sel, nil
}

func (s selector) match(ap netip.AddrPort) bool {
	if !s.set {
		return true
	}
	if s.portSet && ap.Port() != s.port {
		return false
	}
	return !s.prefix.IsValid() || s.prefix.Contains(ap.Addr().Unmap())
}

var countRe = regexp.MustCompile(`^\s*(>=|<=|>|<|==|=)?\s*(\d+)\s*$`)

// ParseExpectations reads an --expect file (YAML, or JSON which is YAML too). Unknown keys and
// bad values are errors naming the line.
func ParseExpectations(name string, data []byte) ([]*Expectation, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %v", name, cleanYAMLErr(err))
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: no expectations (the file should be a list, e.g.\n- server: 198.51.100.1:80\n  not_diagnoses: any)", name)
	}
	list := root.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s: line %d: expected a list of expectations (each starting with '- ')", name, list.Line)
	}
	var out []*Expectation
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %v", name, cleanYAMLErr(err))
	}
	if len(out) == 0 { // "[]": an empty list would check nothing and always pass
		return nil, fmt.Errorf("%s: line %d: the list of expectations is empty", name, list.Line)
	}
	for i, e := range out {
		if e == nil {
			return nil, fmt.Errorf("%s: expectation %d (line %d) is empty", name, i+1, list.Content[i].Line)
		}
		e.line = list.Content[i].Line
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("%s: expectation %d (line %d): %v", name, i+1, e.line, err)
		}
	}
	return out, nil
}

func cleanYAMLErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, " in type report.Expectation", " (known keys: name, client, server, port, instance, client_state, server_state, diagnoses, not_diagnoses, count)")
	return errors.New(msg)
}

func (e *Expectation) validate() error {
	var err error
	if e.client, err = parseSelector(e.Client); err != nil {
		return fmt.Errorf("client: %v", err)
	}
	if e.server, err = parseSelector(e.Server); err != nil {
		return fmt.Errorf("server: %v", err)
	}
	if e.Port < 0 || e.Port > 65535 {
		return fmt.Errorf("port %d out of range", e.Port)
	}
	if e.Instance < 0 {
		return fmt.Errorf("instance counts from 1")
	}
	for _, x := range []struct {
		names StringList
		out   *[]tracker.State
	}{{e.ClientState, &e.clientSt}, {e.ServerState, &e.serverSt}} {
		for _, n := range x.names {
			st, err := tracker.ParseState(n)
			if err != nil {
				return err
			}
			*x.out = append(*x.out, st)
		}
	}
	for _, list := range []StringList{e.Diagnoses, e.NotDiagnoses} {
		for _, d := range list {
			if d != "any" && !knownDiag(d) {
				return fmt.Errorf("unknown diagnosis %q; known: any, %s", d, strings.Join(tracker.AllDiagnoses, ", "))
			}
		}
	}
	if e.Count != "" {
		m := countRe.FindStringSubmatch(e.Count)
		if m == nil {
			return fmt.Errorf("count %q: give a number or a comparison like \">=1\"", e.Count)
		}
		e.countOp, e.countN = m[1], atoi(m[2])
		if e.countOp == "" || e.countOp == "=" {
			e.countOp = "=="
		}
	}
	return nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func knownDiag(id string) bool {
	for _, d := range tracker.AllDiagnoses {
		if d == id {
			return true
		}
	}
	return false
}

func (e *Expectation) describe() string {
	var sel []string
	if e.Client != "" {
		sel = append(sel, "client "+e.Client)
	}
	if e.Server != "" {
		sel = append(sel, "server "+e.Server)
	}
	if e.Port != 0 {
		sel = append(sel, fmt.Sprintf("port %d", e.Port))
	}
	if e.Instance != 0 {
		sel = append(sel, fmt.Sprintf("instance %d of each 4-tuple", e.Instance))
	}
	if len(sel) == 0 {
		sel = append(sel, "all connections")
	}
	var want []string
	if len(e.ClientState) > 0 {
		want = append(want, "client state "+strings.Join(e.ClientState, " or "))
	}
	if len(e.ServerState) > 0 {
		want = append(want, "server state "+strings.Join(e.ServerState, " or "))
	}
	if len(e.Diagnoses) > 0 {
		want = append(want, "has "+strings.Join(e.Diagnoses, ", "))
	}
	if len(e.NotDiagnoses) > 0 {
		want = append(want, "never "+strings.Join(e.NotDiagnoses, ", "))
	}
	if e.Count != "" {
		want = append(want, "count "+e.countOp+" "+strconv.Itoa(e.countN))
	}
	return "selects " + strings.Join(sel, ", ") + "; wants " + strings.Join(want, "; ")
}

// instances numbers each connection within its 4-tuple (1 for the first instance).
func instances(conns []*tracker.Conn) map[uint64]int {
	n := map[[2]netip.AddrPort]int{}
	out := make(map[uint64]int, len(conns))
	for _, c := range conns {
		k := [2]netip.AddrPort{c.Client.Addr, c.Server.Addr}
		if c.Server.Addr.Compare(c.Client.Addr) < 0 {
			k = [2]netip.AddrPort{c.Server.Addr, c.Client.Addr}
		}
		n[k]++
		out[c.ID] = n[k]
	}
	return out
}

func (e *Expectation) selects(c *tracker.Conn, inst int) bool {
	return e.client.match(c.Client.Addr) && e.server.match(c.Server.Addr) &&
		(e.Port == 0 || int(c.Server.Addr.Port()) == e.Port) && (e.Instance == 0 || e.Instance == inst)
}

// problems lists what is wrong with one selected connection.
func (e *Expectation) problems(c *tracker.Conn) []string {
	var out []string
	stateOK := func(got tracker.State, want []tracker.State) bool {
		if len(want) == 0 {
			return true
		}
		for _, w := range want {
			if w == got {
				return true
			}
		}
		return false
	}
	if !stateOK(c.Client.State, e.clientSt) {
		out = append(out, fmt.Sprintf("client is %s, want %s", c.Client.State, strings.Join(e.ClientState, " or ")))
	}
	if !stateOK(c.Server.State, e.serverSt) {
		out = append(out, fmt.Sprintf("server is %s, want %s", c.Server.State, strings.Join(e.ServerState, " or ")))
	}
	anyProblem := false
	for _, d := range c.Diagnoses {
		anyProblem = anyProblem || tracker.Problem(d.ID)
	}
	for _, d := range e.Diagnoses {
		if d == "any" && !anyProblem || d != "any" && !c.HasDiagnosis(d) {
			out = append(out, "lacks "+d)
		}
	}
	for _, d := range e.NotDiagnoses {
		for i := range c.Diagnoses {
			x := &c.Diagnoses[i]
			if d == x.ID || d == "any" && tracker.Problem(x.ID) {
				out = append(out, fmt.Sprintf("has %s (%s: %s)", x.ID, x.Side, DetailText(c, x)))
			}
		}
	}
	return out
}

func countOK(op string, n, want int) bool {
	switch op {
	case ">=":
		return n >= want
	case "<=":
		return n <= want
	case ">":
		return n > want
	case "<":
		return n < want
	}
	return n == want
}

// CheckExpectations checks conns against the expectations and writes a readable report of
// every failure to w. It returns how many expectations failed.
func CheckExpectations(w io.Writer, file string, exps []*Expectation, conns []*tracker.Conn) int {
	inst := instances(conns)
	failed := 0
	for i, e := range exps {
		var matched []*tracker.Conn
		for _, c := range conns {
			if e.selects(c, inst[c.ID]) {
				matched = append(matched, c)
			}
		}
		var lines []string
		if e.Count != "" {
			if !countOK(e.countOp, len(matched), e.countN) {
				lines = append(lines, fmt.Sprintf("  matched %d connection(s), want %s %d", len(matched), e.countOp, e.countN))
			}
		} else if len(matched) == 0 {
			lines = append(lines, "  matched no connection (add count: 0 if that is expected)")
		}
		for _, c := range matched {
			if p := e.problems(c); len(p) > 0 {
				lines = append(lines, fmt.Sprintf("  #%d %s -> %s [%s/%s]: %s", c.ID, AddrPort(c.Client.Addr), AddrPort(c.Server.Addr),
					c.Client.State, c.Server.State, strings.Join(p, "; ")))
			}
		}
		if len(lines) == 0 {
			continue
		}
		failed++
		name := e.Name
		if name == "" {
			name = fmt.Sprintf("expectation %d", i+1)
		}
		fmt.Fprintf(w, "FAIL %s (%s line %d): %s\n%s\n", name, file, e.line, e.describe(), strings.Join(lines, "\n"))
	}
	return failed
}

// WriteExpectations writes an expectation file describing conns (a capture known to be good):
// one entry per server address and port, with the end states seen and the problems absent.
func WriteExpectations(w io.Writer, source string, conns []*tracker.Conn) error {
	type group struct {
		server   netip.AddrPort
		n        int
		cst, sst map[tracker.State]bool
		diags    map[string]bool
	}
	groups := map[netip.AddrPort]*group{}
	var order []netip.AddrPort
	for _, c := range conns {
		g := groups[c.Server.Addr]
		if g == nil {
			g = &group{server: c.Server.Addr, cst: map[tracker.State]bool{}, sst: map[tracker.State]bool{}, diags: map[string]bool{}}
			groups[c.Server.Addr] = g
			order = append(order, c.Server.Addr)
		}
		g.n++
		g.cst[c.Client.State] = true
		g.sst[c.Server.State] = true
		for _, d := range c.Diagnoses {
			g.diags[d.ID] = true
		}
	}
	states := func(m map[tracker.State]bool) string {
		var s []string
		for st := range m {
			s = append(s, st.String())
		}
		sort.Strings(s)
		return "[" + strings.Join(s, ", ") + "]"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# tcpstate expectations, written by --expect-init from %s.\n", source)
	b.WriteString("# Edit to taste and commit; check a new capture with:\n#   tcpstate -r new.pcap --expect THIS_FILE\n")
	b.WriteString("# Keys: name, client, server (addr, CIDR, addr:port, :port), port, instance,\n")
	b.WriteString("#       client_state, server_state, diagnoses, not_diagnoses (or any), count (3, \">=1\").\n")
	for _, k := range order {
		g := groups[k]
		fmt.Fprintf(&b, "\n- name: connections to %s\n  server: %q\n  count: \">=1\"   # seen: %d\n", AddrPort(k), AddrPort(k), g.n)
		fmt.Fprintf(&b, "  client_state: %s\n  server_state: %s\n", states(g.cst), states(g.sst))
		var absent []string
		for _, id := range tracker.AllDiagnoses {
			if tracker.Problem(id) && !g.diags[id] {
				absent = append(absent, id)
			}
		}
		var present []string
		for _, id := range tracker.AllDiagnoses {
			if g.diags[id] {
				present = append(present, id)
			}
		}
		if len(absent) > 0 {
			fmt.Fprintf(&b, "  not_diagnoses: [%s]\n", strings.Join(absent, ", "))
		}
		if len(present) > 0 {
			fmt.Fprintf(&b, "  # seen in this capture: %s\n", strings.Join(present, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
