package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type stringer string

func (s stringer) String() string { return string(s) }

// TestRedactHandler logs a secret in every kind of value a record can hold and checks that
// only the replacement is written, while short values and everything else stay.
func TestRedactHandler(t *testing.T) {
	secrets := []string{"core", "tok-123456", "Bearer tok-123456"}
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"message", func(l *slog.Logger) { l.Info("got tok-123456") }, `"msg":"got [redacted]"`},
		{"string", func(l *slog.Logger) { l.Info("m", "k", "x tok-123456 y") }, `"k":"x [redacted] y"`},
		{"the longest secret first", func(l *slog.Logger) { l.Info("m", "k", "Authorization: Bearer tok-123456") }, `"k":"Authorization: [redacted]"`},
		{"error", func(l *slog.Logger) { l.Info("m", "error", errors.New("401: key tok-123456")) }, `"error":"401: key [redacted]"`},
		{"stringer", func(l *slog.Logger) { l.Info("m", "s", stringer("tok-123456")) }, `"s":"[redacted]"`},
		{"group", func(l *slog.Logger) { l.Info("m", slog.Group("g", "k", "tok-123456")) }, `"g":{"k":"[redacted]"}`},
		{"map", func(l *slog.Logger) { l.Info("m", "answer", map[string]string{"key": "tok-123456"}) }, `"answer":{"key":"[redacted]"}`},
		{"a map without secrets", func(l *slog.Logger) { l.Info("m", "counts", map[string]int{"a": 1}) }, `"counts":{"a":1}`},
		{"with attributes", func(l *slog.Logger) { l.With("k", "tok-123456").Info("m") }, `"k":"[redacted]"`},
		{"with a group", func(l *slog.Logger) { l.WithGroup("g").Info("m", "k", "tok-123456") }, `"g":{"k":"[redacted]"}`},
		{"a value too short to be a secret", func(l *slog.Logger) { l.Info("m", "team", "core") }, `"team":"core"`},
		{"numbers", func(l *slog.Logger) { l.Info("m", "n", 42) }, `"n":42`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), secrets)))
			out := buf.String()
			if !strings.Contains(out, tt.want) {
				t.Errorf("wrote %s, want %s", out, tt.want)
			}
			if strings.Contains(out, "tok-123456") {
				t.Errorf("the secret was written: %s", out)
			}
		})
	}
}

func TestRedactNothing(t *testing.T) {
	h := slog.NewJSONHandler(&bytes.Buffer{}, nil)
	if got := NewHandler(h, []string{"", "abc"}); got != slog.Handler(h) {
		t.Error("without a secret long enough, the handler is not wrapped")
	}
	var buf bytes.Buffer
	if got := NewWriter(&buf, nil); got != &buf {
		t.Error("without secrets, the writer is not wrapped")
	}
}

func TestRedactWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, []string{"tok-123456"})
	line := "lambda-otel logs: tok-123456 INFO=1\n"
	n, err := w.Write([]byte(line))
	if err != nil || n != len(line) {
		t.Errorf("Write = %d, %v; want %d, nil", n, err, len(line))
	}
	if got := buf.String(); got != "lambda-otel logs: [redacted] INFO=1\n" {
		t.Errorf("wrote %q", got)
	}
}
