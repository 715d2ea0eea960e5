VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BUILD   := CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
FUZZ    ?= FuzzSniff
PKG     ?= ./store/media

.PHONY: run test bench fuzz build release purge purge-dry-run clean

run: build ## build, then start ./tyst serve on 127.0.0.1:8080 with data in ./tyst-data
	./tyst serve

test: ## vet, format check and every test with the race detector
	go vet ./...
	test -z "$$(gofmt -l .)"
	go test -race -count=1 ./...

bench: ## benchmarks, including the 20 MB and 200 MB upload to a real tyst serve
	go test -run='^$$' -bench=. -benchmem -count=1 ./...

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
