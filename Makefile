# lambda-otel: the Lambda extension (cmd/lambda-otel) and its tooling.
GO       ?= go
BIN      := bin
FUZZTIME ?= 10s

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
## extension's decoder, listener, log lines, X-Ray header and configuration; the emulator's APIs,
## subscriptions and sink
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeBatch$$' -fuzztime=$(FUZZTIME) ./telemetry
	$(GO) test -run='^$$' -fuzz='^FuzzListenerHandler$$' -fuzztime=$(FUZZTIME) ./telemetry
	$(GO) test -run='^$$' -fuzz='^FuzzLoadConfig$$' -fuzztime=$(FUZZTIME) ./extension
	$(GO) test -run='^$$' -fuzz='^FuzzParseTextLine$$' -fuzztime=$(FUZZTIME) ./telemetry/convert
	$(GO) test -run='^$$' -fuzz='^FuzzLogLine$$' -fuzztime=$(FUZZTIME) ./telemetry/convert
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/xray
	$(GO) test -run='^$$' -fuzz='^FuzzAPI$$' -fuzztime=$(FUZZTIME) ./emulator
	$(GO) test -run='^$$' -fuzz='^FuzzSubscribe$$' -fuzztime=$(FUZZTIME) ./emulator/delivery
	$(GO) test -run='^$$' -fuzz='^FuzzHandler$$' -fuzztime=$(FUZZTIME) ./emulator/sink

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

## bench: the hot-path benchmarks, 6 runs each, summarised by benchstat (see bench/RESULTS.md)
bench:
	@mkdir -p $(BIN)
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 ./telemetry ./telemetry/convert ./cmd/lambda-otel ./emulator | tee $(BIN)/bench.txt
	$(GO) tool benchstat $(BIN)/bench.txt

## layer: the layer zips dist/lambda-otel-x86_64.zip and dist/lambda-otel-arm64.zip, checked, with
## their sizes and digests (see layer/README.md)
layer:
	$(GO) run ./layer/mklayer -out dist

clean:
	rm -rf $(BIN) dist
