package layer

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// maxBinary bounds what Verify decompresses: Lambda refuses more than 250 MB unzipped for
// a function and its layers together, so a larger entry is wrong whatever it holds.
const maxBinary = 250 << 20

// Verify checks the layer zip at path for arch: it holds extensions/lambda-otel, and at
// most the extensions/ directory besides; the file is readable and executable by everyone;
// and it is a 64-bit ELF executable for arch, statically linked and stripped. Errors name
// the entry and what is wrong with it.
func Verify(path string, arch Arch) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer zr.Close()
	if err := verify(&zr.Reader, arch); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func verify(zr *zip.Reader, arch Arch) error {
	var bin *zip.File
	seen := map[string]bool{}
	for _, f := range zr.File {
		if seen[f.Name] {
			return fmt.Errorf("%s: listed twice", f.Name)
		}
		seen[f.Name] = true
		switch f.Name {
		case DirEntry:
		case BinaryEntry:
			bin = f
		default:
			return fmt.Errorf("%s: unexpected entry; the layer holds only %s", f.Name, BinaryEntry)
		}
	}
	if bin == nil {
		return fmt.Errorf("%s: missing", BinaryEntry)
	}
	if err := checkMode(bin.Mode()); err != nil {
		return fmt.Errorf("%s: %w", BinaryEntry, err)
	}
	data, err := readEntry(bin)
	if err != nil {
		return fmt.Errorf("%s: %w", BinaryEntry, err)
	}
	if err := checkELF(data, arch); err != nil {
		return fmt.Errorf("%s: %w", BinaryEntry, err)
	}
	return nil
}

// checkMode wants read and execute permission for everyone, 0755 as Build writes it:
// Lambda does not run extensions as the owner of the extracted file.
func checkMode(mode fs.FileMode) error {
	if !mode.IsRegular() {
		return fmt.Errorf("mode %v, want a regular file", mode)
	}
	if mode.Perm()&0o555 != 0o555 {
		return fmt.Errorf("mode %#o, want 0755 (read and execute for everyone)", mode.Perm())
	}
	return nil
}

func readEntry(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxBinary {
		return nil, fmt.Errorf("%d bytes unzipped, over Lambda's limit of %d", f.UncompressedSize64, maxBinary)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	defer rc.Close()
	// The reader checks the size and the CRC-32 at the end of the entry.
	data, err := io.ReadAll(io.LimitReader(rc, maxBinary+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return data, nil
}

// checkELF wants a binary that runs on arch under any Lambda runtime: a 64-bit executable
// for its machine that loads no shared library, since runtimes differ in their C library,
// and without the symbol table and DWARF, which only a debugger needs.
func checkELF(data []byte, arch Arch) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not an ELF file: %w", err)
	}
	if f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("ELF class %v, want ELFCLASS64", f.Class)
	}
	if f.Machine != arch.Machine {
		return fmt.Errorf("ELF machine %v, want %v", f.Machine, arch.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return fmt.Errorf("ELF type %v, want ET_EXEC", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("dynamically linked (%v program header), want a static binary built with CGO_ENABLED=0", p.Type)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("reading the dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("dynamically linked (needs %s), want a static binary built with CGO_ENABLED=0", strings.Join(libs, ", "))
	}
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			return fmt.Errorf("not stripped (has %s), want a binary built with -ldflags='-s -w'", s.Name)
		}
	}
	return nil
}
