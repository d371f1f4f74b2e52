// Package e2e holds the end-to-end fault suite: the real lambda-emulator runs the real
// lambda-otel extension and the example function, the extension exports through a
// fault-injecting front (internal/otlptest.Front) to the OpenTelemetry Collector's own OTLP
// receiver, and every test checks, with exact counts, that each record the platform
// generated reached the backend or was counted as dropped, with the reason expected.
package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lambda-otel/lambda-otel/internal/testbin"
)

// bins are the real programs. The extension directory holds rsswrap under the extension's
// name, which runs the real extension and records its peak memory.
// function is hello; instrumented the example function that uses the OpenTelemetry SDK.
var bins struct{ emulator, extensions, extension, function, instrumented string }

func TestMain(m *testing.M) {
	os.Exit(testbin.Main(m, func(dir string) error {
		bins.emulator = filepath.Join(dir, "lambda-emulator")
		bins.extensions = filepath.Join(dir, "opt", "extensions")
		bins.extension = filepath.Join(dir, "real", "lambda-otel")
		bins.function = filepath.Join(dir, "hello", "bootstrap")
		bins.instrumented = filepath.Join(dir, "instrumented", "bootstrap")
		if err := testbin.Build(map[string]string{
			bins.emulator:     "github.com/lambda-otel/lambda-otel/cmd/lambda-emulator",
			bins.extension:    "github.com/lambda-otel/lambda-otel/cmd/lambda-otel",
			bins.function:     "github.com/lambda-otel/lambda-otel/examples/hello",
			bins.instrumented: "github.com/lambda-otel/lambda-otel/examples/instrumented",
		}, nil); err != nil {
			return err
		}
		return testbin.Build(map[string]string{
			filepath.Join(bins.extensions, "lambda-otel"): "./testdata/rsswrap",
		}, nil, "-ldflags=-X main.real="+bins.extension)
	}))
}
