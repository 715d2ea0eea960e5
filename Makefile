VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The Go release tyst is built and tested with: the first go1.26 release
# that fixes every standard-library vulnerability govulncheck finds
# reachable from tyst (make vulncheck). The go command fetches it through
# the module proxy when the installed Go is older.
GOTOOLCHAIN ?= go1.26.10
export GOTOOLCHAIN
BUILD   := CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
FUZZ    ?= FuzzSniff
PKG     ?= ./store/media
# The reliability targets (docs/RELIABILITY.md): crash cycles, fuzz time
# per target, load duration, and the govulncheck version CI pins.
CYCLES   ?= 1000
FUZZTIME ?= 30s
LOAD     ?= 3m
GOVULNCHECK ?= v1.9.0
FIGURES  := $(CURDIR)/docs/reliability

.PHONY: run test bench fuzz build release purge purge-dry-run clean crashtest fuzz-all loadtest footprint test-arm64 vulncheck vulncheck-figures reliability-doc

run: build ## build, then start ./tyst serve on 127.0.0.1:8080 with data in ./tyst-data
	./tyst serve

test: ## vet, format check and every test with the race detector
	go vet ./...
	test -z "$$(gofmt -l .)"
	go test -race -count=1 ./...

bench: ## benchmarks, including the 20 MB and 200 MB upload to a real tyst serve, and a short load test
	go test -run='^$$' -bench=. -benchmem -count=1 ./...
	TYST_LOAD_DURATION=20s go test -count=1 -timeout 30m -run '^TestLoad$$' .

fuzz: ## e.g. make fuzz FUZZ=FuzzReader PKG=./store/fstream
	go test -run='^$$' -fuzz='^$(FUZZ)$$' -fuzztime=30s $(PKG)

build:
	$(BUILD) -o tyst .

release:
	GOOS=linux GOARCH=amd64 $(BUILD) -o dist/tyst-linux-amd64 .
	GOOS=linux GOARCH=arm64 $(BUILD) -o dist/tyst-linux-arm64 .
	GOOS=linux GOARCH=arm GOARM=7 $(BUILD) -o dist/tyst-linux-armv7 .

purge: build ## purge ./tyst-data now (through a running server's admin socket, or offline)
	./tyst purge --data ./tyst-data

purge-dry-run: build ## count what purge would delete from ./tyst-data
	./tyst purge --data ./tyst-data --dry-run

clean:
	rm -rf tyst dist

crashtest: ## the crash-injection harness, CYCLES (1000) SIGKILLs; figures in docs/reliability/crashtest.json
	TYST_CRASH_CYCLES=$(CYCLES) TYST_CRASH_FIGURES=$(FIGURES)/crashtest.json \
		go test -count=1 -timeout 0 -run '^TestCrash$$' -v .

fuzz-all: ## every fuzz target for FUZZTIME (30s) each; executions in docs/reliability/fuzz.json
	scripts/fuzz-all.sh $(FUZZTIME)

loadtest: ## LOAD (3m) of 16 concurrent 200 MB uploads, playback, exports; figures in docs/reliability/load.json
	TYST_LOAD_DURATION=$(LOAD) TYST_LOAD_FIGURES=$(FIGURES)/load.json \
		go test -count=1 -timeout 0 -run '^TestLoad$$' -v .

footprint: ## make release, then binary sizes and idle RSS; figures in docs/reliability/footprint.json
	TYST_FOOTPRINT_FIGURES=$(FIGURES)/footprint.json go test -count=1 -timeout 30m -run '^TestFootprint$$' -v .

failpoints: ## the fault walks' figures in docs/reliability/failpoints*.json, the hostile tables' in hostile.json
	go test -count=1 -run '^TestFaultWalk$$' ./store -update
	go test -count=1 -run '^TestFaultWalk_Finalise$$' ./stream -update
	go test -count=1 -run '^TestHostileTable$$' ./api -update
	go test -count=1 -run '^TestHostileFrames$$' ./stream -update

test-arm64: ## the store and stream packages built for linux/arm64, run under qemu-user (no -race)
	CGO_ENABLED=0 GOARCH=arm64 go test -count=1 -exec qemu-aarch64-static ./store/... $$(test -d stream && echo ./stream/...)

vulncheck: ## govulncheck (pinned GOVULNCHECK) over every package: no reachable finding
	scripts/vulncheck.sh $(GOVULNCHECK)

vulncheck-figures: ## make vulncheck, and what it checked in docs/reliability/vulncheck.json
	VULNCHECK_FIGURES=$(FIGURES)/vulncheck.json scripts/vulncheck.sh $(GOVULNCHECK)

reliability-doc: ## docs/RELIABILITY.md from docs/reliability/*.json and its template
	go test -count=1 -run '^TestReliabilityDoc$$' . -update
