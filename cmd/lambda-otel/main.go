// Command lambda-otel is the Lambda extension that turns the Telemetry API stream into
// OpenTelemetry data. Lambda starts it from /opt/extensions/lambda-otel; it is configured
// only through environment variables (see the extension package).
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/lambda-otel/lambda-otel/extension"
	"github.com/lambda-otel/lambda-otel/internal/redact"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cfg, cfgErr := extension.LoadConfig(os.LookupEnv)
	name := filepath.Base(os.Args[0])
	// The extension never logs a header value, but a backend may quote one back in an
	// error that is logged: everything written is cleared of them.
	secrets := cfg.Export.Secrets()
	log := slog.New(redact.NewHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}), secrets)).With("extension", name)
	err := extension.Run(ctx, extension.Options{
		RuntimeAPI: os.Getenv("AWS_LAMBDA_RUNTIME_API"),
		Name:       name,
		Config:     cfg,
		ConfigErr:  cfgErr,
		Logger:     log,
		Version:    version(),
		Console:    redact.NewWriter(os.Stderr, secrets),
	})
	stop()
	if err != nil {
		log.Error("exiting", "error", err.Error())
		os.Exit(1)
	}
}

// version is the module version the binary was built from, as the go command stamps it.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
