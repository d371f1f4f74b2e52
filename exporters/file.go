package exporters

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// File appends each request as one line of OTLP JSON, the format the collector's file
// exporter and receiver use, so the output can be replayed into any OTLP pipeline.
type File struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// NewFile opens (creating or appending to) path.
func NewFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the export file: %w", err)
	}
	return &File{f: f, path: path}, nil
}

// Name is "file".
func (e *File) Name() string { return NameFile }

// Export writes r as one line.
func (e *File) Export(_ context.Context, r Request) Result {
	b, err := r.Marshal(true)
	if err != nil {
		return Result{Rejected: r.Items(), Err: fmt.Errorf("encoding %s: %w", r.Signal(), err)}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.f.Write(append(b, '\n')); err != nil {
		return Result{Retryable: true, Err: fmt.Errorf("writing %s to %s: %w", r.Signal(), e.path, err)}
	}
	return Result{Accepted: r.Items()}
}

// Close closes the file.
func (e *File) Close(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.f.Close()
}
