# lambda-otel: the Lambda extension (cmd/lambda-otel) and its tooling.
GO       ?= go
BIN      := bin
FUZZTIME ?= 10s

.PHONY: build test lint fuzz run bench clean

## build: compile every command into bin/
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: lint, every test with the race detector, then a short run of each fuzz target
test: lint
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s

## lint: gofmt and go vet
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: run each fuzz target for FUZZTIME (make fuzz FUZZTIME=10m for a long run)
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeBatch$$' -fuzztime=$(FUZZTIME) ./telemetry
	$(GO) test -run='^$$' -fuzz='^FuzzListenerHandler$$' -fuzztime=$(FUZZTIME) ./telemetry
	$(GO) test -run='^$$' -fuzz='^FuzzParseTextLine$$' -fuzztime=$(FUZZTIME) ./telemetry/convert
	$(GO) test -run='^$$' -fuzz='^FuzzLogLine$$' -fuzztime=$(FUZZTIME) ./telemetry/convert
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/xray

## run: the local demo
run:
	@echo "make run will start lambda-emulator with an example function and this extension."
	@echo "The emulator is not part of this tree yet; 'make test' exercises the extension today."

## bench: the hot-path benchmarks, 6 runs each, summarised by benchstat (see bench/RESULTS.md)
bench:
	@mkdir -p $(BIN)
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 ./telemetry ./telemetry/convert ./cmd/lambda-otel | tee $(BIN)/bench.txt
	$(GO) tool benchstat $(BIN)/bench.txt

clean:
	rm -rf $(BIN) dist
