package report

// A small Chrome DevTools Protocol client for the browser tests: it starts headless Chromium,
// speaks the protocol over a minimal websocket (RFC 6455, client side, text frames), and
// offers what the tests need: navigate, evaluate, click, type, screenshot. No dependencies.

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// findChromium returns the browser to test with: $CHROME, or the first Chromium on PATH.
func findChromium() string {
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// wsConn is the client end of a websocket.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
	wm sync.Mutex
}

func wsDial(rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	rand.Read(key)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 1<<16)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	return &wsConn{c: c, br: br}, nil
}

// send writes one masked text frame.
func (w *wsConn) send(p []byte) error {
	w.wm.Lock()
	defer w.wm.Unlock()
	hdr := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	rand.Read(mask)
	hdr = append(hdr, mask...)
	buf := make([]byte, len(hdr)+len(p))
	copy(buf, hdr)
	for i, b := range p {
		buf[len(hdr)+i] = b ^ mask[i%4]
	}
	_, err := w.c.Write(buf)
	return err
}

// recv returns the next complete text or binary message, answering pings.
func (w *wsConn) recv() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op, n := h[0]&0x80 != 0, h[0]&0x0f, uint64(h[1]&0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(w.br, mask); err != nil {
				return nil, err
			}
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(w.br, p); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch op {
		case 0x8:
			return nil, io.EOF
		case 0x9: // ping: answer with a pong carrying the same payload
			w.wm.Lock()
			frame := append([]byte{0x8a, 0x80 | byte(len(p))}, 0, 0, 0, 0)
			_, err := w.c.Write(append(frame, p...))
			w.wm.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		case 0xa:
			continue
		}
		msg = append(msg, p...)
		if fin {
			return msg, nil
		}
	}
}

type cdpMsg struct {
	ID     int64           `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// browser is one headless Chromium with one page, driven over the DevTools protocol.
type browser struct {
	t       *testing.T
	cmd     *exec.Cmd
	ws      *wsConn
	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMsg
	loaded  chan struct{}
	// problems: script exceptions, console errors, and any request that left the file.
	problems []string
	stderr   *tailBuffer
}

// tailBuffer keeps the end of a process's output, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8192 {
		t.b = t.b[len(t.b)-8192:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://[^\s]+)`)

// startBrowser starts headless Chromium, or skips the test saying why it cannot.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	if runtime.GOOS != "linux" && os.Getenv("CHROME") == "" {
		t.Skip("browser tests run on Linux with Debian's chromium (or set CHROME to a Chromium binary)")
	}
	bin := findChromium()
	if bin == "" {
		t.Skip("chromium not installed: `make test` installs it as root (apt-get install chromium chromium-driver), or set CHROME")
	}
	dir := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--mute-audio", "--hide-scrollbars=false", "--user-data-dir=" + dir,
		"--remote-debugging-port=0", "--window-size=1400,1000", "about:blank"}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	tail := &tailBuffer{}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(pw, tail)
	cmd.Stdout = tail
	if err := cmd.Start(); err != nil {
		t.Skipf("chromium (%s) does not start: %v", bin, err)
	}
	b := &browser{t: t, cmd: cmd, pending: map[int64]chan cdpMsg{}, loaded: make(chan struct{}, 16), stderr: tail}
	t.Cleanup(b.close)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	var browserURL string
	select {
	case browserURL = <-found:
	case err := <-exited:
		t.Skipf("chromium exited before it was ready (%v); its output:\n%s", err, tail)
	case <-time.After(45 * time.Second):
		t.Skipf("chromium did not open its DevTools port within 45 s; its output:\n%s", tail)
	}
	u, _ := url.Parse(browserURL)
	var targets []struct {
		Type, WebSocketDebuggerURL string
	}
	for i := 0; i < 50 && len(targets) == 0; i++ {
		if resp, err := http.Get("http://" + u.Host + "/json/list"); err == nil {
			var all []struct {
				Type                 string `json:"type"`
				WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
			}
			json.NewDecoder(resp.Body).Decode(&all)
			resp.Body.Close()
			for _, x := range all {
				if x.Type == "page" {
					targets = append(targets, struct{ Type, WebSocketDebuggerURL string }{x.Type, x.WebSocketDebuggerURL})
				}
			}
		}
		if len(targets) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(targets) == 0 {
		t.Fatalf("chromium has no page to drive; its output:\n%s", tail)
	}
	ws, err := wsDial(targets[0].WebSocketDebuggerURL)
	if err != nil {
		t.Fatalf("connecting to chromium's page: %v", err)
	}
	b.ws = ws
	go b.read()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		b.call(m, nil)
	}
	return b
}

func (b *browser) close() {
	if b.ws != nil {
		b.ws.c.Close()
	}
	if b.cmd.Process != nil {
		// Chromium runs helper processes in the group it leads: end that group, ours alone.
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	}
	time.Sleep(200 * time.Millisecond) // let it release its profile directory before TempDir's cleanup
}

func (b *browser) read() {
	for {
		data, err := b.ws.recv()
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMsg
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.pending[m.ID]
			delete(b.pending, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		b.event(m)
	}
}

func (b *browser) event(m cdpMsg) {
	note := func(s string) {
		b.mu.Lock()
		b.problems = append(b.problems, s)
		b.mu.Unlock()
	}
	switch m.Method {
	case "Page.loadEventFired":
		select {
		case b.loaded <- struct{}{}:
		default:
		}
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		json.Unmarshal(m.Params, &p)
		note("exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description)
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string            `json:"type"`
			Args []json.RawMessage `json:"args"`
		}
		json.Unmarshal(m.Params, &p)
		if p.Type == "error" || p.Type == "assert" {
			note(fmt.Sprintf("console.%s: %s", p.Type, p.Args))
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level, Text, URL string
			} `json:"entry"`
		}
		json.Unmarshal(m.Params, &p)
		if p.Entry.Level == "error" {
			note("log: " + p.Entry.Text + " " + p.Entry.URL)
		}
	case "Network.requestWillBeSent":
		var p struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		json.Unmarshal(m.Params, &p)
		if u := p.Request.URL; !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, "about:") {
			note("network request: " + u)
		}
	}
}

// call sends one command and waits for its result.
func (b *browser) call(method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMsg, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	data, _ := json.Marshal(msg)
	if err := b.ws.send(data); err != nil {
		return nil, err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: connection to chromium lost; its output:\n%s", method, b.stderr)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		return m.Result, nil
	case <-time.After(120 * time.Second):
		return nil, fmt.Errorf("%s: no answer from chromium in 120 s", method)
	}
}

func (b *browser) must(method string, params any) json.RawMessage {
	b.t.Helper()
	r, err := b.call(method, params)
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

// eval evaluates a JavaScript expression in the page (awaiting a promise) into v.
func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	r := b.must("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(r, &res); err != nil {
		b.t.Fatalf("evaluating %q: %v", expr, err)
	}
	if res.ExceptionDetails != nil {
		b.t.Fatalf("evaluating %q: %s %s", expr, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description)
	}
	if v != nil && len(res.Result.Value) > 0 {
		if err := json.Unmarshal(res.Result.Value, v); err != nil {
			b.t.Fatalf("evaluating %q: result %s: %v", expr, res.Result.Value, err)
		}
	}
}

// viewport sets the page's size in CSS pixels.
func (b *browser) viewport(w, h int) {
	b.must("Emulation.setDeviceMetricsOverride", map[string]any{"width": w, "height": h, "deviceScaleFactor": 1, "mobile": false})
}

// open loads a file and waits until the report's script has run; it returns how long that took.
func (b *browser) open(path, fragment string) time.Duration {
	b.t.Helper()
	abs, _ := filepath.Abs(path)
	for len(b.loaded) > 0 {
		<-b.loaded
	}
	start := time.Now()
	u := (&url.URL{Scheme: "file", Path: abs, Fragment: fragment}).String()
	b.must("Page.navigate", map[string]any{"url": u})
	select {
	case <-b.loaded:
	case <-time.After(180 * time.Second):
		b.t.Fatalf("%s did not load in 180 s", path)
	}
	b.waitFor("document.documentElement.dataset.ready === '1'", 30*time.Second)
	return time.Since(start)
}

// waitFor polls a JavaScript condition until it holds.
func (b *browser) waitFor(cond string, limit time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var ok bool
		b.eval("!!("+cond+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited %v for %s; page problems: %v", limit, cond, b.pageProblems())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// click clicks the left mouse button at page coordinates, as a user would.
func (b *browser) click(x, y float64) {
	b.t.Helper()
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		p := map[string]any{"type": typ, "x": x, "y": y}
		if typ != "mouseMoved" {
			p["button"], p["clickCount"] = "left", 1
		}
		b.must("Input.dispatchMouseEvent", p)
	}
}

// mouseAway moves the mouse off the timeline and blurs the focus (no tooltip or focus ring in
// screenshots).
func (b *browser) mouseAway() {
	b.t.Helper()
	b.must("Input.dispatchMouseEvent", map[string]any{"type": "mouseMoved", "x": 1, "y": 1})
	b.eval("document.activeElement && document.activeElement.blur()", nil)
}

// clickElement clicks the middle of the first element matching a CSS selector.
func (b *browser) clickElement(selector string) {
	b.t.Helper()
	var r struct{ X, Y float64 }
	sel, _ := json.Marshal(selector)
	b.eval(`(() => { const e = document.querySelector(`+string(sel)+`); e.scrollIntoView({block: 'center'});
		const r = e.getBoundingClientRect(); return {X: r.left + r.width / 2, Y: r.top + r.height / 2}; })()`, &r)
	b.click(r.X, r.Y)
}

// typeText types into the focused element.
func (b *browser) typeText(s string) {
	b.t.Helper()
	b.must("Input.insertText", map[string]any{"text": s})
}

// screenshot saves the whole page as a PNG.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	r := b.must("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true})
	var res struct {
		Data string `json:"data"`
	}
	json.Unmarshal(r, &res)
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		b.t.Fatalf("screenshot: not a PNG (%v)", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// pageProblems returns what went wrong in the page so far (exceptions, errors, requests).
func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// artifactDir is where browser tests leave screenshots and measurements: $TCPSTATE_ARTIFACTS,
// else bin/test-artifacts in the repository.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("TCPSTATE_ARTIFACTS"); d != "" {
		return d
	}
	d, err := filepath.Abs("../bin/test-artifacts")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
