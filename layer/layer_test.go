package layer

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// moduleRoot is where go build runs: tests run in the package's directory.
const moduleRoot = ".."

// TestBuild builds the real layers and checks the key facts of each zip independently of
// Verify, which Build has run: the layout, the executable mode, and a static, stripped ELF
// binary for the zip's architecture. It also checks that the zips are reproducible. The
// subtests run in parallel because deflating under the race detector takes seconds.
func TestBuild(t *testing.T) {
	out := t.TempDir()
	var report bytes.Buffer
	results, err := Build(t.Context(), Options{Dir: moduleRoot, Out: out, Report: &report})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(Archs) {
		t.Fatalf("Build returned %d results, want %d", len(results), len(Archs))
	}
	lines := strings.Split(strings.TrimSpace(report.String()), "\n")
	if len(lines) != len(Archs) {
		t.Fatalf("report has %d lines, want one per architecture:\n%s", len(lines), report.String())
	}
	for i, r := range results {
		t.Run(r.Arch.Lambda, func(t *testing.T) {
			t.Parallel()
			if r.Arch != Archs[i] {
				t.Fatalf("result %d is for %v, want %v", i, r.Arch, Archs[i])
			}
			if want := filepath.Join(out, "lambda-otel-"+r.Arch.Lambda+".zip"); r.Zip != want {
				t.Errorf("zip is %s, want %s", r.Zip, want)
			}
			z, err := os.ReadFile(r.Zip)
			if err != nil {
				t.Fatal(err)
			}
			binary := checkLayout(t, z, r.Arch.Machine)

			if r.ZipSize != int64(len(z)) || r.BinarySize != int64(len(binary)) {
				t.Errorf("sizes: zip %d binary %d, want %d and %d", r.ZipSize, r.BinarySize, len(z), len(binary))
			}
			sum := sha256.Sum256(z)
			if r.SHA256 != sum {
				t.Errorf("SHA256 %x, want %x", r.SHA256, sum)
			}
			for _, want := range []string{r.Zip, " " + r.Arch.Lambda + " ", base64.StdEncoding.EncodeToString(sum[:])} {
				if !strings.Contains(lines[i], want) {
					t.Errorf("report line %q does not contain %q", lines[i], want)
				}
			}

			other := Archs[(i+1)%len(Archs)]
			err = Verify(r.Zip, other)
			if want := "extensions/lambda-otel: ELF machine " + r.Arch.Machine.String() + ", want " + other.Machine.String(); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Verify for %s: %v, want an error containing %q", other.Lambda, err, want)
			}

			again, err := Zip(binary)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, z) {
				t.Error("zipping the same binary again gave different bytes")
			}
		})
	}
	// Go builds are deterministic and cached, so a second build is quick and the same.
	t.Run("rebuild", func(t *testing.T) {
		t.Parallel()
		second, err := Build(t.Context(), Options{Dir: moduleRoot, Out: t.TempDir(), Archs: Archs[:1]})
		if err != nil {
			t.Fatal(err)
		}
		if second[0].SHA256 != results[0].SHA256 {
			t.Errorf("a second build for %s gave zip %x, the first %x", Archs[0].Lambda, second[0].SHA256, results[0].SHA256)
		}
	})
}

// checkLayout asserts the layer's layout and its binary's ELF properties and returns the
// binary.
func checkLayout(t *testing.T, z []byte, machine elf.Machine) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, " "), "extensions/ extensions/lambda-otel"; got != want {
		t.Fatalf("entries %q, want %q", got, want)
	}
	dir, file := zr.File[0], zr.File[1]
	if dir.Mode() != fs.ModeDir|0o755 {
		t.Errorf("extensions/ mode %v, want drwxr-xr-x", dir.Mode())
	}
	const creatorUnix = 3
	if file.CreatorVersion>>8 != creatorUnix || fs.FileMode(file.ExternalAttrs>>16)&0o777 != 0o755 {
		t.Errorf("extensions/lambda-otel: creator %d, external attributes %#x, want Unix permissions 0755", file.CreatorVersion>>8, file.ExternalAttrs)
	}
	if file.Method != zip.Deflate {
		t.Errorf("extensions/lambda-otel: method %d, want Deflate", file.Method)
	}
	if !file.Modified.Equal(zipTime) {
		t.Errorf("extensions/lambda-otel: modified %v, want %v", file.Modified, zipTime)
	}
	rc, err := file.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	binary, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}

	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatal(err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != machine || f.Type != elf.ET_EXEC {
		t.Errorf("ELF %v %v %v, want ELFCLASS64 %v ET_EXEC", f.Class, f.Machine, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("has a %v program header: not static", p.Type)
		}
	}
	if f.Section(".symtab") != nil || f.Section(".debug_info") != nil {
		t.Error("has a symbol table or DWARF: not stripped")
	}
	return binary
}

func TestBuildOverBudget(t *testing.T) {
	out := t.TempDir()
	_, err := Build(t.Context(), Options{Dir: moduleRoot, Out: out, Budget: 1 << 20, Archs: Archs[:1]})
	want := filepath.Join(out, "lambda-otel-x86_64.zip") + ": lambda-otel for x86_64 is "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "over the budget of 1.0 MiB (1048576 bytes)") {
		t.Fatalf("Build: %v, want an error containing %q and the budget", err, want)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("left %v in the output directory", entries)
	}
}

func TestCheckBudget(t *testing.T) {
	for _, tc := range []struct {
		size, budget int64
		want         string // "" for no error
	}{
		{size: 8 << 20, budget: BinaryBudget},
		{size: BinaryBudget, budget: BinaryBudget},
		{size: BinaryBudget + 1, budget: BinaryBudget, want: "lambda-otel for arm64 is 10.0 MiB (10485761 bytes), over the budget of 10.0 MiB (10485760 bytes)"},
		{size: 11114222, budget: BinaryBudget, want: "lambda-otel for arm64 is 10.6 MiB (11114222 bytes), over the budget of 10.0 MiB"},
	} {
		err := CheckBudget(Archs[1], tc.size, tc.budget)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckBudget(%d, %d) = %v, want %q", tc.size, tc.budget, err, tc.want)
		}
	}
}

func TestParseArch(t *testing.T) {
	for _, tc := range []struct {
		name string
		want elf.Machine
	}{
		{"x86_64", elf.EM_X86_64},
		{"amd64", elf.EM_X86_64},
		{"arm64", elf.EM_AARCH64},
		{"aarch64", elf.EM_NONE},
		{"", elf.EM_NONE},
	} {
		a, err := ParseArch(tc.name)
		if tc.want == elf.EM_NONE {
			if err == nil {
				t.Errorf("ParseArch(%q) = %v, want an error", tc.name, a)
			}
			continue
		}
		if err != nil || a.Machine != tc.want {
			t.Errorf("ParseArch(%q) = %v, %v, want %v", tc.name, a, err, tc.want)
		}
	}
}

func TestWriteZip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "layer.zip")
	if err := WriteZip(path, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := WriteZip(path, []byte("second")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Zip([]byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the zip written differs from Zip's")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v, want only layer.zip", entries)
	}
	if err := WriteZip(filepath.Join(dir, "missing", "layer.zip"), nil); err == nil || !strings.Contains(err.Error(), "writing "+filepath.Join(dir, "missing", "layer.zip")) {
		t.Errorf("WriteZip into a missing directory: %v, want an error naming the path", err)
	}
}
