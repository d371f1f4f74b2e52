# lambda-otel: the Lambda extension (cmd/lambda-otel) and its tooling.
GO       ?= go
BIN      := bin
FUZZTIME ?= 10s
# A benchmark that fails must fail its recipe, though its output goes through tee.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: build test lint fuzz run run-otlp demo-programs layer bench clean

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

## fuzz: run each fuzz target for FUZZTIME (make fuzz FUZZTIME=10m for a long run): the
## extension's decoder (batches and platform records), listener, log lines, X-Ray header and
## configuration; the emulator's APIs, subscriptions, sink and event-invoke config
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeBatch$$' -fuzztime=$(FUZZTIME) ./telemetry
	$(GO) test -run='^$$' -fuzz='^FuzzPlatformRecord$$' -fuzztime=$(FUZZTIME) ./telemetry
	$(GO) test -run='^$$' -fuzz='^FuzzListenerHandler$$' -fuzztime=$(FUZZTIME) ./telemetry
	$(GO) test -run='^$$' -fuzz='^FuzzLoadConfig$$' -fuzztime=$(FUZZTIME) ./extension
	$(GO) test -run='^$$' -fuzz='^FuzzParseTextLine$$' -fuzztime=$(FUZZTIME) ./telemetry/convert
	$(GO) test -run='^$$' -fuzz='^FuzzLogLine$$' -fuzztime=$(FUZZTIME) ./telemetry/convert
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/xray
	$(GO) test -run='^$$' -fuzz='^FuzzUnquote$$' -fuzztime=$(FUZZTIME) ./internal/jsontext
	$(GO) test -run='^$$' -fuzz='^FuzzAPI$$' -fuzztime=$(FUZZTIME) ./emulator
	$(GO) test -run='^$$' -fuzz='^FuzzSubscribe$$' -fuzztime=$(FUZZTIME) ./emulator/delivery
	$(GO) test -run='^$$' -fuzz='^FuzzHandler$$' -fuzztime=$(FUZZTIME) ./emulator/sink
	$(GO) test -run='^$$' -fuzz='^FuzzPut$$' -fuzztime=$(FUZZTIME) ./emulator/eventconfig
	$(GO) test -run='^$$' -fuzz='^FuzzHTTPHandler$$' -fuzztime=$(FUZZTIME) ./receiver

## run: the local demo: the example function and this extension in lambda-emulator (a cold start,
## four invocations, one failing, three calling a service on loopback, and a shutdown), exporting to
## the emulator's embedded OTLP sink, which prints what it received (OTLP JSON in bin/demo/otlp.jsonl)
run: demo-programs
	$(GO) run ./examples/demo -bin $(BIN) -out $(BIN)/demo

## run-otlp: the same run exporting to your backend, set by the usual variables, e.g.
## make run-otlp OTEL_EXPORTER_OTLP_ENDPOINT=https://otlp.example.com OTEL_EXPORTER_OTLP_HEADERS=x-api-key=...
run-otlp: demo-programs
	$(GO) run ./examples/demo -bin $(BIN) -out $(BIN)/demo -external

demo-programs:
	$(GO) build -o $(BIN)/ ./cmd/... ./examples/hello

## bench: the hot paths' benchmarks (decode, ingest over loopback, convert, encode; 6 runs) and
## the harness in bench/ (the real binaries in the emulator: start-up against a floor extension,
## time after each response per flush strategy, memory under 10,000 lines/s for 30 s, shutdown
## with 100,000 lines held; 5 runs), raw in bench/*.txt for benchstat, summarised in bench/RESULTS.md
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 ./telemetry ./telemetry/convert ./cmd/lambda-otel ./emulator | tee bench/hotpaths.txt
	{ $(GO) test -run='^$$' -bench='^BenchmarkInit$$' -benchtime=20x -count=5 ./bench && \
	  $(GO) test -run='^$$' -bench='^Benchmark(Invoke|Backend|ShutdownFlush)$$' -benchtime=3x -count=5 ./bench && \
	  $(GO) test -run='^$$' -bench='^BenchmarkMemory$$' -benchtime=1x -count=5 ./bench; } | tee bench/harness.txt
	$(GO) tool benchstat bench/hotpaths.txt
	$(GO) tool benchstat bench/harness.txt

## layer: the layer zips dist/lambda-otel-x86_64.zip and dist/lambda-otel-arm64.zip, checked, with
## their sizes and digests (see layer/README.md)
layer:
	$(GO) run ./layer/mklayer -out dist

clean:
	rm -rf $(BIN) dist
