// Package bench measures lambda-otel as a function sees it: the real binary, built as the
// layer ships it, run by the emulator next to a real function and exporting to the
// Collector's own OTLP receiver. Each Benchmark* runs whole experiments and reports their
// figures as custom units, so that `go test -bench` output goes straight into benchstat.
// The Test* functions run the same experiments briefly, to keep them working.
package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// bins are the programs the experiments run, built once.
var bins struct {
	lambdaOtel, floor, hello string
}

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, func(dir string) error {
		bins.lambdaOtel = filepath.Join(dir, "lambda-otel")
		bins.floor = filepath.Join(dir, "floor")
		bins.hello = filepath.Join(dir, "hello")
		// Both extensions are built as the layer builds lambda-otel, so that neither start-up
		// carries costs the other does not.
		if err := testbin.Build(map[string]string{
			bins.lambdaOtel: "github.com/lambda-otel/lambda-otel/cmd/lambda-otel",
			bins.floor:      "github.com/lambda-otel/lambda-otel/bench/floor",
		}, []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w"); err != nil {
			return err
		}
		return testbin.Build(map[string]string{bins.hello: "github.com/lambda-otel/lambda-otel/examples/hello"}, nil)
	}))
}
