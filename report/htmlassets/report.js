// tcpstate HTML report: header charts, a virtualized timeline (one canvas lane per connection,
// only the visible lanes are drawn) and an SVG ladder diagram for the selected connection.
// Everything it shows comes from the JSON object in #tcpstate-data (layout: report/html.go).
(function () {
  'use strict';
  const tStart = performance.now();
  const D = JSON.parse(document.getElementById('tcpstate-data').textContent);
  const tParsed = performance.now();

  // Connection fields (positional, see "layout" in the data).
  const ID = 0, CH = 1, CP = 2, SH = 3, SP = 4, FIRST = 5, DUR = 6, PKTS = 7, BYTES = 8, CST = 9, SST = 10,
    BITS = 11, CEV = 12, SEV = 13, DIAG = 14, INIT = 15, CHG = 16, PK = 17, EL = 18, ZST = 19, ZH = 20,
    ENDED = 21, REUSES = 22, REUSEDBY = 23, REASONS = 24;
  const F_FIN = 1, F_SYN = 2, F_RST = 4, F_PSH = 8, F_ACK = 16, F_URG = 32, F_ECE = 64, F_CWR = 128;
  const K_RETX = 2, K_DUP = 7;
  const M_SYN = 1, M_FIN = 2, M_RST = 4, M_RETX = 8, M_ZW = 16;
  const CLOSED = 0;
  const STATE_COLORS = ['#c3c9d1', '#7b8794', '#f2c12e', '#e8a317', '#2e9e4f', '#6aa9f0', '#2f6fd6',
    '#ef6c1a', '#9b59d0', '#c77dd8', '#18a3a3'];
  const MARK = { syn: '#135e2a', fin: '#0b2f6b', rst: '#d93025', retx: '#f28b00', zw: '#7b1fa2' };
  const conns = D.conns;
  const byId = new Map();
  for (let i = 0; i < conns.length; i++) byId.set(conns[i][ID], i);

  // ---------- small helpers ----------
  const $ = (id) => document.getElementById(id);
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]));
  }
  const str = (i) => (i >= 0 ? D.strings[i] : '');
  function hostPort(h, p) {
    const ip = D.hosts[h];
    return ip.indexOf(':') >= 0 ? '[' + ip + ']:' + p : ip + ':' + p;
  }
  const clientOf = (c) => hostPort(c[CH], c[CP]);
  const serverOf = (c) => hostPort(c[SH], c[SP]);
  const fmtInt = (n) => Number(n).toLocaleString('en-US');
  function fmtDur(us) {
    const a = Math.abs(us), sign = us < 0 ? '-' : '';
    if (a < 1000) return sign + a + ' µs';
    if (a < 1e6) return sign + trim((a / 1000).toFixed(3)) + ' ms';
    if (a < 3600e6) return sign + trim((a / 1e6).toFixed(3)) + ' s';
    const s = Math.floor(a / 1e6), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return sign + h + 'h' + String(m).padStart(2, '0') + 'm' + String(s % 60).padStart(2, '0') + 's';
  }
  function trim(x) { return x.indexOf('.') >= 0 ? x.replace(/0+$/, '').replace(/\.$/, '') : x; }
  // fmtAbs writes an instant (µs from the capture start) as UTC with microseconds.
  function fmtAbs(us) {
    const abs = D.start_us + us;
    const ms = Math.floor(abs / 1000);
    const iso = new Date(ms).toISOString();
    return iso.slice(0, 10) + ' ' + iso.slice(11, 23) + String(((abs % 1000) + 1000) % 1000).padStart(3, '0') + ' UTC';
  }
  function flagNames(f) {
    const out = [];
    if (f & F_SYN) out.push('SYN');
    if (f & F_FIN) out.push('FIN');
    if (f & F_RST) out.push('RST');
    if (f & F_PSH) out.push('PSH');
    if (f & F_URG) out.push('URG');
    if (f & F_ECE) out.push('ECE');
    if (f & F_CWR) out.push('CWR');
    if (f & F_ACK) out.push('ACK');
    return out.length ? out.join(', ') : 'none';
  }
  const stateName = (s) => D.names[s] || '?';
  const isProblem = (c) => { const d = c[DIAG]; for (let i = 0; i < d.length; i += 3) if (D.diag_problem[d[i]]) return true; return false; };

  // ---------- decoding ----------
  // decodePackets mirrors encodePackets in html.go: deltas of time and packet number, and
  // sequence numbers as differences from what each direction's sequence space predicts.
  function decodePackets(c) {
    const a = c[PK], out = [], next = [0, 0];
    let t = 0, pkt = 0;
    for (let i = 0; i < a.length;) {
      t += a[i++];
      const code = D.codes[a[i++]];
      const flags = code & 255, dir = (code >> 8) & 1, kind = (code >> 9) & 7, zw = (code >> 12) & 1;
      const file = Math.floor(code / 65536);
      const dseq = code & 8192 ? a[i++] : 0;
      const dack = code & 16384 ? a[i++] : 0;
      const len = code & 32768 ? a[i++] : 0;
      pkt += a[i++];
      const seq = (next[dir] + dseq) >>> 0;
      const ack = flags & F_ACK ? (next[1 - dir] + dack) >>> 0 : null;
      out.push({ t, dir, flags, kind, zw, file, seq, ack, len, pkt });
      const end = (seq + len + (flags & F_SYN ? 1 : 0) + (flags & F_FIN ? 1 : 0)) >>> 0;
      if (!(flags & F_RST) && ((end - next[dir]) | 0) > 0) next[dir] = end;
    }
    return out;
  }
  function markOf(flags, kind, zw) {
    let m = 0;
    if (flags & F_SYN) m |= M_SYN;
    if (flags & F_FIN) m |= M_FIN;
    if (flags & F_RST) m |= M_RST;
    if (kind === K_RETX) m |= M_RETX;
    if (zw) m |= M_ZW;
    return m;
  }
  // changes returns the state changes of c, given its decoded packets: {t (µs from its first
  // packet), side, state, idx (the packet that caused it, or -1), reason}.
  function changes(c, ps) {
    const a = c[CHG], rs = c[REASONS], out = [];
    for (let i = 0, k = 0; i + 1 < a.length; i += 2, k++) {
      // where: a packet index, or -(1 + 2*µs + 1 if a timer did it).
      const w = a[i + 1], idx = w >= 0 && w < ps.length ? w : -1, v = -(w + 1);
      out.push({ t: w >= 0 ? (idx >= 0 ? ps[idx].t : 0) : Math.floor(v / 2), timer: w < 0 && v % 2 === 1,
        side: a[i] >> 4, state: a[i] & 15, idx, reason: rs.length ? str(rs[k]) : '' });
    }
    return out;
  }
  // laneInfo: what a lane draws, decoded when it first becomes visible and kept (compact):
  // markers [t, dir, mask, ...] and per side the states [t, state, t, state, ...] in time order.
  const laneCache = new Map();
  function laneInfo(ci) {
    let li = laneCache.get(ci);
    if (li) return li;
    const c = conns[ci], ps = decodePackets(c), m = [];
    for (const p of ps) {
      const k = p.kind === K_DUP ? 0 : markOf(p.flags, p.kind, p.zw);
      if (k) m.push(p.t, p.dir, k);
    }
    const el = c[EL];
    for (let i = 2; i + 1 < el.length; i += 2) {
      const code = D.codes[el[i + 1]];
      const k = markOf(code & 255, (code >> 9) & 7, (code >> 12) & 1);
      if (k) m.push(el[i], (code >> 8) & 1, k);
    }
    const s = [[0, c[INIT] >> 4], [0, c[INIT] & 15]];
    let end = c[DUR];
    for (const x of changes(c, ps).filter((x) => x.side <= 1).sort((a, b) => a.t - b.t)) {
      s[x.side].push(x.t, x.state);
      end = Math.max(end, x.t);
    }
    li = { marks: m, spans: s, end };
    laneCache.set(ci, li);
    return li;
  }
  function stateAt(ci, side, t) {
    const s = laneInfo(ci).spans[side];
    let st = s[1];
    for (let i = 0; i < s.length; i += 2) if (s[i] <= t) st = s[i + 1];
    return st;
  }

  // ---------- header ----------
  function renderHeader() {
    $('tool').textContent = D.tool + ' · names: ' + D.naming + (D.profile ? ' · OS timer profile: ' + D.profile : '');
    const facts = [];
    const files = D.files.length ? D.files.join(', ') : '(none)';
    facts.push(['Capture', esc(files) + (D.filter ? ' <span class="muted">filter:</span> ' + esc(D.filter) : '')]);
    if (D.start) facts.push(['Time span', esc(fmtAbs(0)) + ' → ' + esc(fmtAbs(D.last)) + ' <span class="muted">(' + esc(fmtDur(D.last)) + ')</span>']);
    if (D.end !== D.last) facts.push(['States as of', esc(fmtAbs(D.end))]);
    facts.push(['Packets', '<span class="big">' + fmtInt(D.packets) + '</span>']);
    facts.push(['Connections', '<span class="big">' + fmtInt(D.conn_count) + '</span>']);
    facts.push(['With problems', '<span class="big" style="color:' + (D.problems ? 'var(--problem)' : 'inherit') + '">' + fmtInt(D.problems) + '</span>']);
    $('facts').innerHTML = facts.map(([k, v]) => '<div><dt>' + k + '</dt><dd>' + v + '</dd></div>').join('');

    // Diagnoses, problems first.
    const order = D.diags.map((_, i) => i).filter((i) => D.diag_counts[i] > 0)
      .sort((a, b) => (D.diag_problem[b] - D.diag_problem[a]) || (a - b));
    const maxD = Math.max(1, ...order.map((i) => D.diag_counts[i]));
    let h = '';
    for (const i of order) {
      const n = D.diag_counts[i], pct = (100 * n / Math.max(1, D.conn_count));
      h += '<span class="lbl">' + esc(D.diags[i]) + '</span><div class="bar" data-diag="' + i + '" title="' +
        (D.diag_problem[i] ? 'problem' : 'note about the capture') + ': ' + n + ' connection(s), ' + pct.toFixed(1) + '%">' +
        '<span class="fill ' + (D.diag_problem[i] ? 'problem' : 'note') + '" style="width:' + (100 * n / maxD) + '%"></span><span class="n">' + fmtInt(n) + '</span></div>';
    }
    $('diag-bars').innerHTML = h || '<span class="muted">none: no connection has a diagnosis</span>';

    let sh = '';
    const maxS = Math.max(1, ...D.state_counts[0], ...D.state_counts[1]);
    for (let s = 0; s < D.names.length; s++) {
      const cn = D.state_counts[0][s], sn = D.state_counts[1][s];
      if (cn + sn === 0) continue;
      const bar = (side, n) => '<div class="bar' + (n ? '' : ' zero') + '" data-side="' + side + '" data-state="' + s + '" title="' +
        (side ? 'server' : 'client') + ' ends in ' + esc(stateName(s)) + ': ' + n + '"><span class="fill" style="background:' +
        STATE_COLORS[s] + ';width:' + (100 * n / maxS) + '%"></span><span class="n">' + fmtInt(n) + '</span></div>';
      sh += '<span class="lbl">' + esc(stateName(s)) + '</span><div class="statebar">' + bar(0, cn) + bar(1, sn) + '</div>';
    }
    $('state-bars').innerHTML = sh || '<span class="muted">no connections</span>';
    $('diag-bars').addEventListener('click', (e) => {
      const b = e.target.closest('.bar');
      if (!b) return;
      const i = +b.dataset.diag;
      filter.diag = filter.diag === i ? null : i;
      applyFilter();
    });
    $('state-bars').addEventListener('click', (e) => {
      const b = e.target.closest('.bar');
      if (!b || b.classList.contains('zero')) return;
      const key = +b.dataset.side ? 'sstate' : 'cstate', s = +b.dataset.state;
      filter[key] = filter[key] === s ? null : s;
      applyFilter();
    });

    // Legend.
    let lg = '';
    for (let s = 0; s < D.names.length; s++) {
      if (D.state_counts[0][s] + D.state_counts[1][s] === 0 && s !== CLOSED && !usedStates[s]) continue;
      lg += '<span><span class="sw" style="background:' + STATE_COLORS[s] + '"></span>' + esc(stateName(s)) + '</span>';
    }
    const icon = (inner) => '<svg width="12" height="12" viewBox="0 0 12 12">' + inner + '</svg>';
    lg += '<span>' + icon('<polygon points="2,11 6,2 10,11" fill="' + MARK.syn + '"/>') + 'SYN</span>';
    lg += '<span>' + icon('<rect x="5" y="1" width="2" height="10" fill="' + MARK.fin + '"/>') + 'FIN</span>';
    lg += '<span>' + icon('<rect x="4" y="0" width="4" height="12" fill="' + MARK.rst + '"/>') + 'RST</span>';
    lg += '<span>' + icon('<circle cx="6" cy="6" r="4" fill="' + MARK.retx + '"/>') + 'retransmission</span>';
    lg += '<span>' + icon('<rect x="2" y="2" width="8" height="8" fill="' + MARK.zw + '"/>') + 'zero window</span>';
    $('legend').innerHTML = lg;
    $('foot').textContent = 'Generated by ' + D.tool + '. States are reconstructed from the packets alone; a "?" marks a state the wire did not show directly. ' +
      'Ladder diagrams draw at most the first ' + fmtInt(D.head_packets) + ' and the last ' + fmtInt(D.tail_packets) + ' packets of a connection.';
  }
  // States that appear anywhere in a lane (not only at the end), for the legend.
  const usedStates = new Array(16).fill(false);
  for (const c of conns) {
    usedStates[c[INIT] >> 4] = usedStates[c[INIT] & 15] = true;
    const a = c[CHG];
    for (let i = 0; i < a.length; i += 2) usedStates[a[i] & 15] = true;
  }

  // ---------- filtering and order ----------
  const filter = { diag: null, cstate: null, sstate: null, q: '' };
  let view = [];
  const orders = {};
  function ordered(kind) {
    if (orders[kind]) return orders[kind];
    const idx = conns.map((_, i) => i);
    if (kind === 'time') idx.sort((a, b) => (conns[a][FIRST] - conns[b][FIRST]) || (conns[a][ID] - conns[b][ID]));
    if (kind === 'id') idx.sort((a, b) => conns[a][ID] - conns[b][ID]);
    return (orders[kind] = idx);
  }
  let searchText = null;
  function matcher(q) {
    const terms = q.toLowerCase().split(/[\s,]+/).filter(Boolean);
    if (!terms.length) return null;
    if (!searchText) searchText = conns.map((c) => (clientOf(c) + ' ' + serverOf(c)).toLowerCase());
    const lowerNames = D.names.map((n) => n.toLowerCase()), canon = D.canonical.map((n) => n.toLowerCase());
    const tests = terms.map((t) => {
      let m;
      if ((m = /^#(\d+)$/.exec(t))) { const id = +m[1]; return (c) => c[ID] === id; }
      if ((m = /^:?(\d{1,5})$/.exec(t))) { const p = +m[1]; return (c) => c[CP] === p || c[SP] === p; }
      let s = lowerNames.indexOf(t);
      if (s < 0) s = canon.indexOf(t);
      if (s >= 0) return (c) => c[CST] === s || c[SST] === s;
      const d = D.diags.indexOf(t);
      if (d >= 0) return (c) => { const a = c[DIAG]; for (let i = 0; i < a.length; i += 3) if (a[i] === d) return true; return false; };
      return (c, ci) => searchText[ci].indexOf(t) >= 0;
    });
    return (c, ci) => tests.every((f) => f(c, ci));
  }
  function applyFilter() {
    const m = matcher(filter.q);
    const base = ordered($('order').value);
    view = [];
    for (const ci of base) {
      const c = conns[ci];
      if (filter.cstate !== null && c[CST] !== filter.cstate) continue;
      if (filter.sstate !== null && c[SST] !== filter.sstate) continue;
      if (filter.diag !== null) {
        const a = c[DIAG];
        let ok = false;
        for (let i = 0; i < a.length; i += 3) if (a[i] === filter.diag) { ok = true; break; }
        if (!ok) continue;
      }
      if (m && !m(c, ci)) continue;
      view.push(ci);
    }
    // Chips and bar highlights.
    const chips = [];
    if (filter.diag !== null) chips.push(['diag', 'diagnosis: ' + D.diags[filter.diag]]);
    if (filter.cstate !== null) chips.push(['cstate', 'client ' + stateName(filter.cstate)]);
    if (filter.sstate !== null) chips.push(['sstate', 'server ' + stateName(filter.sstate)]);
    $('chips').innerHTML = chips.map(([k, v]) => '<span class="chip" data-k="' + k + '" title="remove this filter">' + esc(v) + '</span>').join('');
    for (const b of document.querySelectorAll('#diag-bars .bar')) b.classList.toggle('on', +b.dataset.diag === filter.diag);
    for (const b of document.querySelectorAll('#state-bars .bar')) {
      const key = +b.dataset.side ? 'sstate' : 'cstate';
      b.classList.toggle('on', filter[key] === +b.dataset.state);
    }
    $('count').textContent = view.length === conns.length ? fmtInt(conns.length) + ' connections' : fmtInt(view.length) + ' of ' + fmtInt(conns.length) + ' connections';
    $('lanes-spacer').style.height = view.length * LH + 'px';
    if ($('lanes').scrollTop > view.length * LH) $('lanes').scrollTop = 0;
    // A short list gets a short timeline (all its lanes); a long one scrolls.
    const want = Math.max(4, Math.min(conns.length, 200)) * LH + 2;
    const wrap = $('lanes-wrap');
    wrap.style.height = 'min(46vh, ' + want + 'px)';
    if (W && wrap.clientHeight !== H) resize();
    draw();
  }
  $('chips').addEventListener('click', (e) => {
    const ch = e.target.closest('.chip');
    if (ch) { filter[ch.dataset.k] = null; applyFilter(); }
  });
  let searchTimer = 0;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { filter.q = $('search').value; applyFilter(); }, conns.length > 20000 ? 200 : 30);
  });
  $('order').addEventListener('change', applyFilter);

  // ---------- timeline ----------
  const LH = 22, RIGHT_PAD = 10, LANE_FONT = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
  const lanes = $('lanes'), canvas = $('lanes-canvas'), axis = $('axis');
  const ctx = canvas.getContext('2d'), actx = axis.getContext('2d');
  // The label column fits the longest "client → server" (IPv6 included), within limits.
  const LABEL_W = (() => {
    let n = 0;
    for (const c of conns) {
      const l = D.hosts[c[CH]].length + D.hosts[c[SH]].length + String(c[CP]).length + String(c[SP]).length + 11;
      if (l > n) n = l;
    }
    ctx.font = LANE_FONT;
    return Math.round(Math.min(560, Math.max(300, 62 + n * ctx.measureText('0').width + 16)));
  })();
  let W = 0, H = 0, dpr = 1;
  const span = Math.max(D.end, D.last, 1);
  let t0 = -span * 0.01, t1 = span * 1.01;
  let selected = -1;
  const timings = { parse_ms: tParsed - tStart, first_render_ms: 0, draws: 0, draw_total_ms: 0, draw_max_ms: 0, ladder_ms: 0 };

  function resize() {
    dpr = window.devicePixelRatio || 1;
    W = lanes.clientWidth;
    H = lanes.clientHeight;
    canvas.width = Math.max(1, W * dpr);
    canvas.height = Math.max(1, H * dpr);
    canvas.style.width = W + 'px';
    canvas.style.height = H + 'px';
    const aw = axis.clientWidth;
    axis.width = Math.max(1, aw * dpr);
    axis.height = Math.max(1, 26 * dpr);
    draw();
  }
  const xOf = (t) => LABEL_W + ((t - t0) / (t1 - t0)) * (W - LABEL_W - RIGHT_PAD);
  const tOf = (x) => t0 + ((x - LABEL_W) / (W - LABEL_W - RIGHT_PAD)) * (t1 - t0);

  function niceStep(range, px) {
    const target = range / Math.max(1, px / 110);
    const p = Math.pow(10, Math.floor(Math.log10(target)));
    for (const m of [1, 2, 5, 10]) if (m * p >= target) return m * p;
    return 10 * p;
  }
  function ticks() {
    const step = niceStep(t1 - t0, W - LABEL_W);
    const out = [];
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
    return out;
  }

  let pending = false;
  function draw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; drawNow(); });
  }
  function drawNow() {
    const tA = performance.now();
    drawAxis();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const top = lanes.scrollTop;
    const first = Math.max(0, Math.floor(top / LH)), last = Math.min(view.length - 1, Math.floor((top + H) / LH));
    // Grid.
    ctx.fillStyle = '#eef1f4';
    const tk = ticks();
    for (const t of tk) ctx.fillRect(Math.round(xOf(t)), 0, 1, H);
    const xEnd = xOf(D.end);
    ctx.fillStyle = '#9aa5b1';
    if (xEnd > LABEL_W && xEnd < W) ctx.fillRect(Math.round(xEnd), 0, 1, H);
    ctx.font = LANE_FONT;
    ctx.textBaseline = 'middle';
    for (let i = first; i <= last; i++) drawLane(i, i * LH - top);
    // Label column separator.
    ctx.fillStyle = '#d9dee4';
    ctx.fillRect(LABEL_W - 6, 0, 1, H);
    if (!view.length) {
      ctx.fillStyle = '#6b7785';
      ctx.fillText('No connection matches the filters.', 12, 16);
    }
    const dt = performance.now() - tA;
    timings.draws++;
    timings.draw_total_ms += dt;
    timings.draw_max_ms = Math.max(timings.draw_max_ms, dt);
  }
  function drawAxis() {
    const aw = axis.clientWidth;
    actx.setTransform(dpr, 0, 0, dpr, 0, 0);
    actx.clearRect(0, 0, aw, 26);
    actx.font = '11px system-ui, sans-serif';
    actx.textBaseline = 'middle';
    actx.fillStyle = '#6b7785';
    actx.fillText('connection (client → server)', 8, 13);
    actx.save();
    actx.beginPath();
    actx.rect(LABEL_W - 6, 0, aw, 26);
    actx.clip();
    for (const t of ticks()) {
      const x = Math.round(xOf(t));
      actx.fillStyle = '#9aa5b1';
      actx.fillRect(x, 18, 1, 8);
      actx.fillStyle = '#1f2933';
      const label = t === 0 ? '0' : (t < 0 ? '' : '+') + fmtDur(Math.round(t));
      if (x + 3 + actx.measureText(label).width < aw - 2) actx.fillText(label, x + 3, 10);
    }
    actx.restore();
  }
  function drawLane(i, y) {
    const ci = view[i], c = conns[ci];
    if (ci === selected) { ctx.fillStyle = '#fff4c2'; ctx.fillRect(0, y, W, LH); } else if (i % 2) { ctx.fillStyle = '#fafbfc'; ctx.fillRect(0, y, W, LH); }
    // Label.
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, y, LABEL_W - 10, LH);
    ctx.clip();
    if (isProblem(c)) { ctx.fillStyle = '#d93025'; ctx.beginPath(); ctx.arc(6, y + LH / 2, 3, 0, 7); ctx.fill(); }
    ctx.fillStyle = '#6b7785';
    ctx.fillText('#' + c[ID], 12, y + LH / 2);
    ctx.fillStyle = '#1f2933';
    ctx.fillText(clientOf(c) + ' → ' + serverOf(c), 62, y + LH / 2);
    ctx.restore();
    // States.
    ctx.save();
    ctx.beginPath();
    ctx.rect(LABEL_W - 5, y, W - LABEL_W + 5, LH);
    ctx.clip();
    const f = c[FIRST], lastPkt = f + c[DUR];
    const li = laneInfo(ci), sp = li.spans;
    for (let side = 0; side < 2; side++) {
      const yy = y + 2 + side * 9, s = sp[side];
      for (let k = 0; k < s.length; k += 2) {
        const ta = f + s[k], tb = k + 2 < s.length ? f + s[k + 2] : Math.max(D.end, lastPkt);
        const st = s[k + 1];
        if (tb < t0 || ta > t1) continue;
        let xa = xOf(ta), xb = xOf(tb);
        if (st === CLOSED) {
          // A closed endpoint: a hairline while its connection still has packets, nothing after.
          const te = Math.min(tb, lastPkt);
          if (te > ta) { ctx.fillStyle = '#b8c0ca'; ctx.fillRect(xa, yy + 4, Math.max(1, xOf(te) - xa), 1); }
          continue;
        }
        ctx.fillStyle = STATE_COLORS[st];
        ctx.fillRect(xa, yy, Math.max(1.5, xb - xa), 8);
      }
    }
    // Markers: one per kind and direction per pixel.
    const m = li.marks;
    const lastX = [[-9, -9, -9, -9, -9], [-9, -9, -9, -9, -9]];
    for (let k = 0; k < m.length; k += 3) {
      const t = f + m[k];
      if (t < t0 || t > t1) continue;
      const x = xOf(t), dir = m[k + 1], mask = m[k + 2], yy = y + 2 + dir * 9;
      for (let b = 0; b < 5; b++) {
        if (!(mask & (1 << b))) continue;
        if (Math.abs(x - lastX[dir][b]) < 1.5) continue;
        lastX[dir][b] = x;
        drawMark(1 << b, x, yy);
      }
    }
    ctx.restore();
  }
  function drawMark(b, x, yy) {
    switch (b) {
      case M_SYN:
        ctx.fillStyle = MARK.syn;
        ctx.beginPath(); ctx.moveTo(x - 3.5, yy + 8); ctx.lineTo(x, yy); ctx.lineTo(x + 3.5, yy + 8); ctx.closePath(); ctx.fill();
        break;
      case M_FIN:
        ctx.fillStyle = MARK.fin; ctx.fillRect(x - 1, yy - 1, 2, 10);
        break;
      case M_RST:
        ctx.fillStyle = MARK.rst; ctx.fillRect(x - 1.5, yy - 2, 3, 12);
        break;
      case M_RETX:
        ctx.fillStyle = MARK.retx; ctx.beginPath(); ctx.arc(x, yy + 4, 3, 0, 7); ctx.fill();
        break;
      case M_ZW:
        ctx.fillStyle = MARK.zw; ctx.fillRect(x - 3, yy + 1, 6, 6);
        break;
    }
  }

  // Interaction: scroll, hover, click, drag to pan, Ctrl+wheel to zoom.
  lanes.addEventListener('scroll', draw, { passive: true });
  window.addEventListener('resize', resize);
  function laneAt(ev) {
    const r = lanes.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    const i = Math.floor((y + lanes.scrollTop) / LH);
    return { x, y, i: i >= 0 && i < view.length ? i : -1 };
  }
  let drag = null;
  lanes.addEventListener('mousedown', (ev) => {
    if (ev.button !== 0) return;
    const r = lanes.getBoundingClientRect();
    if (ev.clientX - r.left > W) return; // the scrollbar
    drag = { x: ev.clientX, t0, t1, moved: false };
  });
  window.addEventListener('mousemove', (ev) => {
    if (drag) {
      const dx = ev.clientX - drag.x;
      if (Math.abs(dx) > 3) drag.moved = true;
      if (drag.moved) {
        const dt = (dx / (W - LABEL_W - RIGHT_PAD)) * (drag.t1 - drag.t0);
        t0 = drag.t0 - dt; t1 = drag.t1 - dt;
        draw();
      }
    }
  });
  window.addEventListener('mouseup', (ev) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.moved) return;
    const l = laneAt(ev);
    if (l.i >= 0) select(view[l.i], { scroll: false });
  });
  lanes.addEventListener('dblclick', () => zoomTo(-span * 0.01, span * 1.01));
  lanes.addEventListener('wheel', (ev) => {
    const l = laneAt(ev);
    if (ev.ctrlKey || ev.metaKey) {
      ev.preventDefault();
      const tc = l.x > LABEL_W ? tOf(l.x) : (t0 + t1) / 2;
      const f = Math.exp(ev.deltaY * 0.002);
      const nt0 = tc - (tc - t0) * f, nt1 = tc + (t1 - tc) * f;
      if (nt1 - nt0 > 1) zoomTo(nt0, nt1);
    } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
      ev.preventDefault();
      const d = (ev.shiftKey ? ev.deltaY : ev.deltaX) / (W - LABEL_W) * (t1 - t0);
      zoomTo(t0 + d, t1 + d);
    }
  }, { passive: false });
  lanes.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
    ev.preventDefault();
    let p = selected >= 0 ? view.indexOf(selected) : -1;
    p = Math.max(0, Math.min(view.length - 1, p + (ev.key === 'ArrowDown' ? 1 : -1)));
    if (view.length) select(view[p], { scroll: true });
  });
  const tip = $('tip');
  lanes.addEventListener('mousemove', (ev) => {
    if (drag && drag.moved) { tip.hidden = true; return; }
    const l = laneAt(ev);
    if (l.i < 0 || l.x > W) { tip.hidden = true; return; }
    const ci = view[l.i], c = conns[ci];
    let s = '#' + c[ID] + '  ' + clientOf(c) + ' → ' + serverOf(c);
    if (l.x > LABEL_W) {
      const t = tOf(l.x), rel = t - c[FIRST];
      if (rel >= 0) s += '\nat +' + fmtDur(Math.round(t)) + ': client ' + stateName(stateAt(ci, 0, rel)) + ', server ' + stateName(stateAt(ci, 1, rel));
    }
    s += '\nend: client ' + stateName(c[CST]) + (c[BITS] & 1 ? '?' : '') + ', server ' + stateName(c[SST]) + (c[BITS] & 2 ? '?' : '') +
      ' · ' + fmtInt(c[PKTS]) + ' packets';
    const d = c[DIAG];
    for (let k = 0; k < d.length; k += 3) s += '\n' + D.diags[d[k]] + ' (' + ['client', 'server', 'both'][d[k + 1]] + ')';
    tip.textContent = s;
    tip.hidden = false;
    const tl = $('timeline').getBoundingClientRect(), r = lanes.getBoundingClientRect();
    let left = l.x + 14;
    if (left + 380 > tl.width) left = Math.max(0, l.x - 390);
    tip.style.left = left + 'px';
    tip.style.top = (r.top - tl.top + l.y + 14) + 'px';
  });
  lanes.addEventListener('mouseleave', () => { tip.hidden = true; });
  function zoomTo(a, b) { t0 = a; t1 = b; draw(); }
  $('zoom-all').addEventListener('click', () => zoomTo(-span * 0.01, span * 1.01));
  $('zoom-sel').addEventListener('click', () => {
    if (selected < 0) return;
    const c = conns[selected], end = laneInfo(selected).end;
    const pad = Math.max(end * 0.05, 50);
    zoomTo(c[FIRST] - pad, c[FIRST] + end + pad);
  });

  // ---------- selection and detail ----------
  function select(ci, opts) {
    selected = ci;
    const c = conns[ci];
    try { history.replaceState(null, '', '#conn=' + c[ID]); } catch (e) { /* file:// in some browsers */ }
    if (opts && opts.scroll) {
      const p = view.indexOf(ci);
      if (p >= 0) {
        const y = p * LH;
        if (y < lanes.scrollTop || y + LH > lanes.scrollTop + H) lanes.scrollTop = Math.max(0, y - H / 3);
      }
    }
    renderDetail(ci);
    draw();
  }
  function renderDetail(ci) {
    const c = conns[ci];
    $('detail-empty').hidden = true;
    $('detail-body').hidden = false;
    $('detail-title').textContent = '#' + c[ID] + '  ' + clientOf(c) + ' → ' + serverOf(c);
    const pill = (s, inferred) => '<span class="pill" style="background:' + STATE_COLORS[s] + '">' + esc(stateName(s)) + (inferred ? '?' : '') + '</span>';
    const rows = [];
    rows.push(['client', esc(clientOf(c)) + ' ' + pill(c[CST], c[BITS] & 1) + (c[BITS] & 1 ? ' <span class="muted">inferred: ' + esc(str(c[CEV])) + '</span>' : '')]);
    rows.push(['server', esc(serverOf(c)) + ' ' + pill(c[SST], c[BITS] & 2) + (c[BITS] & 2 ? ' <span class="muted">inferred: ' + esc(str(c[SEV])) + '</span>' : '')]);
    rows.push(['packets', fmtInt(c[PKTS]) + ' <span class="muted">(' + fmtInt(c[BYTES]) + ' payload bytes)</span>']);
    rows.push(['first packet', esc(fmtAbs(c[FIRST])) + ' <span class="muted">(+' + esc(fmtDur(c[FIRST])) + ' into the capture)</span>']);
    rows.push(['duration', esc(fmtDur(c[DUR]))]);
    const d = c[DIAG];
    if (d.length) {
      let h = '';
      for (let k = 0; k < d.length; k += 3) {
        h += (k ? '<br>' : '') + '<span class="' + (D.diag_problem[d[k]] ? 'diag-problem' : 'diag-note') + '">' + esc(D.diags[d[k]]) + '</span> (' +
          ['client', 'server', 'both'][d[k + 1]] + ')' + (d[k + 2] >= 0 ? ': ' + esc(str(d[k + 2])) : '');
      }
      rows.push(['diagnoses', h]);
    } else rows.push(['diagnoses', '<span class="muted">none</span>']);
    if (c[BITS] & 4) rows.push(['note', 'handshake not captured (midstream): client and server were guessed']);
    else if (c[BITS] & 8) rows.push(['note', 'the client’s SYN was not captured: roles taken from the SYN-ACK']);
    if (c[ENDED] >= 0) rows.push(['ended by', esc(str(c[ENDED]))]);
    rows.push(['zeek', esc(str(c[ZST])) + ' <span class="muted">history</span> ' + esc(str(c[ZH]))]);
    if (c[REUSES]) rows.push(['reuses', 'the 4-tuple of <a data-conn="' + c[REUSES] + '">#' + c[REUSES] + '</a>']);
    if (c[REUSEDBY]) rows.push(['reused by', '<a data-conn="' + c[REUSEDBY] + '">#' + c[REUSEDBY] + '</a>']);
    rows.push(['link', '<span class="muted">this report with this connection selected: …#conn=' + c[ID] + '</span>']);
    $('detail-facts').innerHTML = rows.map(([k, v]) => '<dt>' + k + '</dt><dd>' + v + '</dd>').join('');
    const tA = performance.now();
    renderLadder(ci);
    timings.ladder_ms = performance.now() - tA;
  }
  $('detail-facts').addEventListener('click', (e) => {
    const a = e.target.closest('a[data-conn]');
    if (a && byId.has(+a.dataset.conn)) select(byId.get(+a.dataset.conn), { scroll: true });
  });

  // The ladder: client and server as vertical lines coloured by their state, one arrow per
  // packet (time flows down, one row per packet), the state written beside each line where
  // it changes.
  function renderLadder(ci) {
    const c = conns[ci];
    const ps = decodePackets(c);
    const el = c[EL], elided = el.length ? el[0] : 0, headN = el.length ? el[1] : ps.length;
    const multiFile = D.files.length > 1;
    const Wd = 1020, XC = 300, XS = 780, ROW = 30, SLOPE = 14, TOP = 70;
    const rowY = (i) => TOP + i * ROW + (elided && i >= headN ? 2 * ROW : 0);
    const total = ps.length + elided, dups = total - c[PKTS];
    $('ladder-note').textContent = (elided
      ? 'Showing the first ' + fmtInt(headN) + ' and the last ' + fmtInt(ps.length - headN) + ' of ' + fmtInt(total) +
        ' captured packets (' + fmtInt(elided) + ' in between are not drawn: the report keeps at most ' + fmtInt(D.head_packets) + ' + ' + fmtInt(D.tail_packets) + ' per connection)'
      : fmtInt(total) + ' captured packet' + (total === 1 ? '' : 's')) +
      (dups > 0 ? ', ' + fmtInt(dups) + ' of them capture duplicates (drawn grey)' : '') + '. Sequence numbers are relative; times from the first packet.';

    // State changes, placed on the packet that caused them (or by time, for timers).
    const chs = changes(c, ps).filter((x) => x.side <= 1);
    let extra = 0;
    const lastRow = ps.length ? rowY(ps.length - 1) : TOP;
    const placed = chs.map((x) => {
      let y;
      if (x.idx >= 0 && x.idx < ps.length) {
        y = rowY(x.idx) + (ps[x.idx].dir === x.side ? 0 : SLOPE);
      } else {
        let j = -1;
        for (let k = 0; k < ps.length; k++) if (ps[k].t <= x.t) j = k;
        if (j === ps.length - 1 && ps.length) { extra++; y = lastRow + SLOPE + 16 * extra; } else y = j < 0 ? TOP - 12 : rowY(j) + SLOPE + 8;
      }
      return { y, side: x.side, state: x.state, t: x.t, reason: x.reason, timer: x.timer };
    }).sort((a, b) => a.y - b.y);
    const Hd = Math.max(lastRow + SLOPE + 16 * extra + 40, TOP + 60);

    const out = [];
    out.push('<svg width="' + Wd + '" height="' + Hd + '" viewBox="0 0 ' + Wd + ' ' + Hd + '" role="img" aria-label="ladder diagram of connection ' + c[ID] + '">');
    out.push('<text x="' + XC + '" y="18" text-anchor="middle" font-weight="bold" font-size="12">client</text>');
    out.push('<text x="' + XC + '" y="34" text-anchor="middle">' + esc(clientOf(c)) + '</text>');
    out.push('<text x="' + XS + '" y="18" text-anchor="middle" font-weight="bold" font-size="12">server</text>');
    out.push('<text x="' + XS + '" y="34" text-anchor="middle">' + esc(serverOf(c)) + '</text>');
    out.push('<text x="8" y="52" fill="#6b7785">packet</text><text x="130" y="52" text-anchor="end" fill="#6b7785">time</text>');

    // The two lines, coloured by state.
    const init = [c[INIT] >> 4, c[INIT] & 15];
    for (let side = 0; side < 2; side++) {
      const x = side ? XS : XC;
      let y = TOP - 24, st = init[side];
      const segs = [];
      for (const p of placed) if (p.side === side) { segs.push([y, p.y, st]); y = p.y; st = p.state; }
      segs.push([y, Hd - 10, st]);
      for (const [ya, yb, s] of segs) {
        if (yb <= ya) continue;
        out.push(s === CLOSED
          ? '<line x1="' + x + '" y1="' + ya + '" x2="' + x + '" y2="' + yb + '" stroke="#9aa5b1" stroke-width="1.5" stroke-dasharray="3 3"/>'
          : '<line class="life" x1="' + x + '" y1="' + ya + '" x2="' + x + '" y2="' + yb + '" stroke="' + STATE_COLORS[s] + '" stroke-width="6"/>');
      }
    }
    if (elided) {
      const yg = rowY(headN - 1) + ROW + 8;
      out.push('<text x="' + ((XC + XS) / 2) + '" y="' + (yg + 20) + '" text-anchor="middle" fill="#6b7785" font-style="italic">⋯ ' +
        fmtInt(elided) + ' packets not drawn ⋯</text>');
    }
    // Packets.
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i], y = rowY(i);
      const xa = p.dir ? XS : XC, xb = p.dir ? XC : XS, y2 = y + SLOPE;
      const dup = p.kind === K_DUP;
      let color = '#5f6b7a';
      if (p.len > 0) color = '#1f2933';
      if (p.flags & F_SYN) color = MARK.syn;
      if (p.flags & F_FIN) color = MARK.fin;
      if (p.flags & F_RST) color = MARK.rst;
      if (p.kind === K_RETX) color = MARK.retx;
      if (dup) color = '#b8c0ca';
      const fl = flagNames(p.flags);
      const kindName = D.kinds[p.kind];
      let lab = esc(fl) + '  seq=' + p.seq + (p.ack !== null ? ' ack=' + p.ack : '') + ' len=' + p.len;
      if (p.kind >= 2) lab += ' <tspan fill="' + (dup ? '#9aa5b1' : MARK.retx) + '">[' + esc(kindName) + ']</tspan>';
      if (p.zw) lab += ' <tspan fill="' + MARK.zw + '">win=0</tspan>';
      const num = (multiFile ? 'file ' + (p.file + 1) + ' ' : '') + '#' + p.pkt;
      const title = 'packet ' + num + ' at ' + fmtAbs(c[FIRST] + p.t) + ' (+' + fmtDur(p.t) + ')\n' + (p.dir ? 'server → client' : 'client → server') +
        ' [' + fl + '] seq ' + p.seq + (p.ack !== null ? ' ack ' + p.ack : '') + ' len ' + p.len + ' (' + kindName + ')' + (p.zw ? ', zero window' : '');
      const ang = Math.atan2(y2 - y, xb - xa), hx = xb - Math.cos(ang) * 3, hy = y2 - Math.sin(ang) * 3;
      const h1x = hx - 9 * Math.cos(ang - 0.35), h1y = hy - 9 * Math.sin(ang - 0.35), h2x = hx - 9 * Math.cos(ang + 0.35), h2y = hy - 9 * Math.sin(ang + 0.35);
      out.push('<g class="pkt" data-i="' + i + '" data-flags="' + esc(fl) + '" data-dir="' + (p.dir ? 's2c' : 'c2s') + '" data-kind="' + esc(kindName) + '">' +
        '<title>' + esc(title) + '</title>' +
        '<text x="8" y="' + (y + 10) + '" fill="#6b7785">' + esc(num) + '</text>' +
        '<text x="130" y="' + (y + 10) + '" text-anchor="end" fill="#6b7785">' + esc(fmtDur(p.t)) + '</text>' +
        '<line x1="' + (xa + (p.dir ? -4 : 4)) + '" y1="' + y + '" x2="' + hx.toFixed(1) + '" y2="' + hy.toFixed(1) + '" stroke="' + color + '" stroke-width="1.5"' +
        (dup || p.kind === K_RETX ? ' stroke-dasharray="5 3"' : '') + '/>' +
        '<polygon points="' + hx.toFixed(1) + ',' + hy.toFixed(1) + ' ' + h1x.toFixed(1) + ',' + h1y.toFixed(1) + ' ' + h2x.toFixed(1) + ',' + h2y.toFixed(1) + '" fill="' + color + '"/>' +
        '<text class="lab" x="' + ((XC + XS) / 2) + '" y="' + (y + SLOPE / 2 - 4) + '" text-anchor="middle" fill="' + (dup ? '#9aa5b1' : '#1f2933') + '">' + lab + '</text></g>');
    }
    // State labels, pushed apart where they would overlap.
    const lastY = [-1e9, -1e9];
    for (const p of placed) {
      const y = Math.max(p.y, lastY[p.side] + 17);
      lastY[p.side] = y;
      const name = stateName(p.state) + (p.timer ? ' ⏱' : '');
      const w = name.length * 6.7 + 12;
      const x = p.side ? XS + 10 : XC - 10 - w;
      const title = (p.side ? 'server' : 'client') + ' → ' + stateName(p.state) + ' at +' + fmtDur(p.t) + (p.reason ? ': ' + p.reason : '') + (p.timer ? ' (timer)' : '');
      out.push('<g class="st" data-side="' + (p.side ? 'server' : 'client') + '" data-state="' + esc(D.canonical[p.state]) + '"><title>' + esc(title) + '</title>' +
        '<line x1="' + (p.side ? XS : XC) + '" y1="' + p.y + '" x2="' + (p.side ? x : x + w) + '" y2="' + (y + 0) + '" stroke="#9aa5b1" stroke-width="0.8"/>' +
        '<rect x="' + x.toFixed(1) + '" y="' + (y - 8) + '" width="' + w.toFixed(1) + '" height="16" rx="8" fill="' + STATE_COLORS[p.state] + '"/>' +
        '<text x="' + (x + w / 2).toFixed(1) + '" y="' + (y + 4) + '" text-anchor="middle" fill="#fff" font-weight="bold">' + esc(name) + '</text></g>');
    }
    out.push('</svg>');
    $('ladder').innerHTML = out.join('');
  }

  // ---------- start ----------
  function fromHash() {
    const h = location.hash.replace(/^#/, '');
    const params = new URLSearchParams(h);
    if (params.has('q')) { filter.q = params.get('q'); $('search').value = filter.q; applyFilter(); }
    const id = parseInt(params.get('conn'), 10);
    if (byId.has(id)) {
      const ci = byId.get(id);
      if (selected !== ci) select(ci, { scroll: true });
    }
  }
  renderHeader();
  applyFilter();
  resize();
  fromHash();
  window.addEventListener('hashchange', fromHash);
  drawNow();
  timings.first_render_ms = performance.now();
  // For tests and for the curious: the data and a few hooks, nothing the page needs.
  window.tcpstateReport = {
    data: D, timings, decodePackets, view: () => view.map((ci) => conns[ci][ID]),
    select: (id) => { if (byId.has(id)) select(byId.get(id), { scroll: true }); },
    search: (q) => { $('search').value = q; filter.q = q; applyFilter(); return view.length; },
    // laneCenter: where on the page the lane of connection id is (after scrolling it into view).
    laneCenter: (id) => {
      const ci = byId.get(id), p = view.indexOf(ci);
      if (p < 0) return null;
      const y = p * LH;
      if (y < lanes.scrollTop || y + LH > lanes.scrollTop + H) { lanes.scrollTop = Math.max(0, y - H / 3); drawNow(); }
      const r = lanes.getBoundingClientRect();
      return { x: r.left + LABEL_W / 2, y: r.top + p * LH - lanes.scrollTop + LH / 2 };
    },
  };
  document.documentElement.dataset.ready = '1';
})();
