// Package redact keeps secrets out of what the extension writes: its log records and the
// console exporter's lines. The extension never writes a header value itself, but text from
// elsewhere reaches its output, such as a backend's answer quoted in an export error, which
// may repeat the API key it was sent.
package redact

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// minSecretLen is the shortest secret redacted. Replacing short values everywhere would
// garble the log (x-team=core would hide every "core"), and a credential that short
// protects nothing.
const minSecretLen = 6

// redacted stands in for a secret.
const redacted = "[redacted]"

// newRedactor returns a replacer of secrets, or nil when no secret is long enough to
// redact. Longer secrets are tried first, so that one containing another is replaced whole.
func newRedactor(secrets []string) *strings.Replacer {
	secrets = slices.Clone(secrets)
	slices.SortStableFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			pairs = append(pairs, s, redacted)
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return strings.NewReplacer(pairs...)
}

// redactHandler replaces secrets in the message and the attributes of every record before
// its handler writes it.
type redactHandler struct {
	h slog.Handler
	r *strings.Replacer
}

// NewHandler wraps h so that none of secrets reaches it; it returns h itself when no
// secret is long enough to redact.
func NewHandler(h slog.Handler, secrets []string) slog.Handler {
	r := newRedactor(secrets)
	if r == nil {
		return h
	}
	return &redactHandler{h: h, r: r}
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Replace(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &redactHandler{h: h.h.WithAttrs(clean), r: h.r}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{h: h.h.WithGroup(name), r: h.r}
}

// attr returns a with its secrets replaced. Strings, errors and Stringers are replaced as
// text; other values, as the JSON the handler would write for them.
func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.Replace(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = h.attr(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.Replace(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.r.Replace(x.String()))
		}
		b, err := json.Marshal(v.Any())
		if err != nil {
			return a
		}
		if clean := h.r.Replace(string(b)); clean != string(b) {
			if json.Valid([]byte(clean)) {
				return slog.Any(a.Key, json.RawMessage(clean))
			}
			return slog.String(a.Key, redacted)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactWriter replaces secrets in what it writes. Each Write must hold whole lines, as
// the console exporter's do, so that no secret is split between two.
type redactWriter struct {
	w io.Writer
	r *strings.Replacer
}

// NewWriter wraps w so that none of secrets reaches it; it returns w itself when no
// secret is long enough to redact.
func NewWriter(w io.Writer, secrets []string) io.Writer {
	r := newRedactor(secrets)
	if r == nil {
		return w
	}
	return &redactWriter{w: w, r: r}
}

func (w *redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.r.Replace(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
