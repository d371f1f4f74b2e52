package layer

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// zipTime is the modification time of every entry. A zip that depends only on the binary
// gives an unchanged binary the same bytes, hence the same CodeSha256 on publish and the
// same source_code_hash in Terraform, so a rebuild alone never looks like a new layer.
// 1980-01-01 is the earliest date the format's MS-DOS date fields can hold; UTC because
// those fields carry no time zone.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip returns the layer zip holding binary as extensions/lambda-otel: the directory entry
// first, then the file, deflated. The bytes depend only on binary and the Go version.
func Zip(binary []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)

	dir := &zip.FileHeader{Name: DirEntry, Modified: zipTime}
	dir.SetMode(fs.ModeDir | 0o755)
	if _, err := zw.CreateHeader(dir); err != nil {
		return nil, fmt.Errorf("adding %s: %w", DirEntry, err)
	}

	// SetMode records Unix permissions in the external attributes; without them unzip
	// tools, and Lambda, would extract the file without its executable bits.
	file := &zip.FileHeader{Name: BinaryEntry, Method: zip.Deflate, Modified: zipTime}
	file.SetMode(0o755)
	w, err := zw.CreateHeader(file)
	if err != nil {
		return nil, fmt.Errorf("adding %s: %w", BinaryEntry, err)
	}
	if _, err := w.Write(binary); err != nil {
		return nil, fmt.Errorf("compressing %s: %w", BinaryEntry, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("finishing the zip: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteZip writes the layer zip of binary to path. It writes a temporary file next to path
// and renames it, so that an interrupted build leaves either the previous zip or the new
// one, never part of one.
func WriteZip(path string, binary []byte) error {
	z, err := Zip(binary)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(z); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// CreateTemp makes the file private; a zip to publish or share is readable by all.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done = true
	return nil
}
