// Command mklayer builds the lambda-otel layer zips, dist/lambda-otel-x86_64.zip and
// dist/lambda-otel-arm64.zip, checks them, and prints their sizes and digests. Run it from
// the module root, as `make layer` does.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/lambda-otel/lambda-otel/layer"
)

func main() {
	out := flag.String("out", "dist", "directory to write the zips to")
	budget := flag.Int64("budget", layer.BinaryBudget, "largest binary accepted, in bytes")
	archs := flag.String("arch", "x86_64,arm64", "comma-separated architectures (x86_64 or amd64, arm64)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	}
	opts := layer.Options{Out: *out, Budget: *budget, Report: os.Stdout}
	for name := range strings.SplitSeq(*archs, ",") {
		a, err := layer.ParseArch(strings.TrimSpace(name))
		if err != nil {
			fail(err)
		}
		opts.Archs = append(opts.Archs, a)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	_, err := layer.Build(ctx, opts)
	stop()
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mklayer:", err)
	os.Exit(1)
}
