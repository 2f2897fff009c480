# tcpstate — two commands for a newcomer: `make run` and `make test`.
# Every install step lives here: on a fresh Debian machine (root) missing packages come from apt.

GO        ?= go
BIN       := bin/tcpstate
PREFIX    ?= /usr/local
DEMO      := testdata/pcaps/kernel/mixed-40/capture.pcap
APT_PKGS  := libpcap-dev
LAB_PKGS  := tcpdump iptables iproute2 liblwip-dev gcc prometheus
PEER_PKGS := tcptrace tshark tcpdump time tcpreplay iproute2
BROWSER_PKGS := chromium
# TEST_PKGS: tools some tests check tcpstate's output with (tshark reads --annotate's comments).
TEST_PKGS := tshark

.PHONY: all run install build test test-deps deps lab-deps peer-deps browser-deps testdata testdata-netstack netstack-host bench fuzz pgo clean

all: build

# deps: libpcap headers (cgo, used to compile tcpdump filter expressions).
deps:
	@./scripts/ensure-packages.sh $(APT_PKGS)

# lab-deps: what the kernel recorder and the namespace tests need (root only; skipped otherwise);
# prometheus: the metrics test runs a real Prometheus (and promtool) against live capture.
lab-deps:
	@./scripts/ensure-packages.sh --optional $(LAB_PKGS)

test-deps:
	@./scripts/ensure-packages.sh --optional $(TEST_PKGS)

peer-deps:
	@./scripts/ensure-packages.sh --optional $(PEER_PKGS)

# browser-deps: headless Chromium for the HTML report's end-to-end tests (root only; they skip otherwise).
browser-deps:
	@./scripts/ensure-packages.sh --optional $(BROWSER_PKGS)

build: deps
	$(GO) build -o $(BIN) ./cmd/tcpstate

# run: build, then analyse a bundled kernel recording so you see the tool work.
run: build
	@echo "built $(CURDIR)/$(BIN); running: $(BIN) -r $(DEMO)"
	@./$(BIN) -r $(DEMO)
	@echo
	@echo "The binary is $(CURDIR)/$(BIN). Put it on your PATH with: sudo make install (PREFIX=$(PREFIX): $(PREFIX)/bin/tcpstate)"

# install: build, then copy the binary to $(DESTDIR)$(PREFIX)/bin (PREFIX=/usr/local by default:
# make install PREFIX=$$HOME/.local puts it in ~/.local/bin without root).
install: build
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 0755 $(BIN) "$(DESTDIR)$(PREFIX)/bin/tcpstate"
	@echo "installed $(DESTDIR)$(PREFIX)/bin/tcpstate"

# test: the whole suite. Tests needing root/network namespaces skip with a reason elsewhere.
test: deps lab-deps browser-deps test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# testdata: re-record the kernel ground truth (root: network namespaces, tcpdump, ss).
testdata: build lab-deps
	$(GO) run ./internal/kernellab/cmd/record -out testdata/pcaps/kernel

# testdata-netstack: re-record the netstack ground truth (root): gVisor's netstack on the client,
# the server or both ends. internal/netstackhost is its own Go module (gVisor stays out of
# tcpstate's go.mod); the recorder builds it with `go build` and caches the binary.
testdata-netstack: lab-deps
	$(GO) run ./internal/kernellab/cmd/recordnetstack -out testdata/pcaps/netstack

# netstack-host: download gVisor and build the netstack host ahead of the tests (optional:
# TestNetstackFresh builds it on first use).
netstack-host:
	cd internal/netstackhost && $(GO) build -o /dev/null .

bench: build peer-deps
	GO=$(GO) ./scripts/bench.sh

fuzz:
	./scripts/fuzz.sh 60s

# pgo: regenerate cmd/tcpstate/default.pgo, the profile go build optimises bin/tcpstate with.
pgo:
	GO=$(GO) ./scripts/pgo.sh

clean:
	rm -rf bin
