package layer

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeELF describes a small ELF file with just the parts Verify looks at, so that each
// way a binary can be wrong is one field away from a binary that passes.
type fakeELF struct {
	class    elf.Class
	typ      elf.Type
	machine  elf.Machine
	progs    []elf.ProgType
	sections []string // extra empty sections, by name
	needed   []string // DT_NEEDED libraries, in a .dynamic section
}

// goodELF passes Verify for x86_64.
func goodELF() fakeELF {
	return fakeELF{class: elf.ELFCLASS64, typ: elf.ET_EXEC, machine: elf.EM_X86_64, progs: []elf.ProgType{elf.PT_LOAD}}
}

// bytes lays a 64-bit file out as header, program headers, section contents, section
// headers.
func (f fakeELF) bytes(t *testing.T) []byte {
	t.Helper()
	const ehsize, phentsize, shentsize = 64, 56, 64

	type section struct {
		name       string
		typ        elf.SectionType
		data       []byte
		link, size uint32
		entsize    uint64
	}
	sections := []section{{}} // index 0 is the null section
	for _, name := range f.sections {
		typ := elf.SHT_PROGBITS
		if name == ".symtab" {
			typ = elf.SHT_SYMTAB
		}
		sections = append(sections, section{name: name, typ: typ})
	}
	if len(f.needed) > 0 {
		dynstr := []byte{0}
		var dynamic bytes.Buffer
		for _, lib := range f.needed {
			binary.Write(&dynamic, binary.LittleEndian, elf.Dyn64{Tag: int64(elf.DT_NEEDED), Val: uint64(len(dynstr))})
			dynstr = append(append(dynstr, lib...), 0)
		}
		binary.Write(&dynamic, binary.LittleEndian, elf.Dyn64{Tag: int64(elf.DT_NULL)})
		sections = append(sections,
			section{name: ".dynstr", typ: elf.SHT_STRTAB, data: dynstr},
			section{name: ".dynamic", typ: elf.SHT_DYNAMIC, data: dynamic.Bytes(), link: uint32(len(sections)), entsize: 16})
	}
	shstrtab := []byte{0}
	names := make([]uint32, len(sections)+1)
	for i, s := range sections[1:] {
		names[i+1] = uint32(len(shstrtab))
		shstrtab = append(append(shstrtab, s.name...), 0)
	}
	names[len(sections)] = uint32(len(shstrtab))
	shstrtab = append(shstrtab, ".shstrtab\x00"...)
	sections = append(sections, section{name: ".shstrtab", typ: elf.SHT_STRTAB, data: shstrtab})

	dataOff := uint64(ehsize + phentsize*len(f.progs))
	var data bytes.Buffer
	offsets := make([]uint64, len(sections))
	for i, s := range sections {
		offsets[i] = dataOff + uint64(data.Len())
		data.Write(s.data)
	}
	shoff := dataOff + uint64(data.Len())

	var out bytes.Buffer
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(f.class)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	write := func(v any) {
		if err := binary.Write(&out, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	if f.class == elf.ELFCLASS32 {
		// Only the header: a 32-bit file fails Verify on its class alone.
		write(elf.Header32{Ident: ident, Type: uint16(f.typ), Machine: uint16(f.machine), Version: uint32(elf.EV_CURRENT), Ehsize: 52})
		return out.Bytes()
	}
	write(elf.Header64{
		Ident: ident, Type: uint16(f.typ), Machine: uint16(f.machine), Version: uint32(elf.EV_CURRENT),
		Phoff: ehsize, Shoff: shoff, Ehsize: ehsize,
		Phentsize: phentsize, Phnum: uint16(len(f.progs)),
		Shentsize: shentsize, Shnum: uint16(len(sections)), Shstrndx: uint16(len(sections) - 1),
	})
	for _, p := range f.progs {
		write(elf.Prog64{Type: uint32(p), Flags: uint32(elf.PF_R), Align: 1})
	}
	out.Write(data.Bytes())
	for i, s := range sections {
		write(elf.Section64{Name: names[i], Type: uint32(s.typ), Off: offsets[i], Size: uint64(len(s.data)), Link: s.link, Addralign: 1, Entsize: s.entsize})
	}
	return out.Bytes()
}

// entry is one entry of a test zip; a zero mode leaves out the Unix permissions, as
// zip tools on other systems do.
type entry struct {
	name string
	mode fs.FileMode
	data []byte
}

func writeTestZip(t *testing.T, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "layer.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerify(t *testing.T) {
	with := func(change func(*fakeELF)) []byte {
		f := goodELF()
		change(&f)
		return f.bytes(t)
	}
	good := goodELF().bytes(t)
	dir := entry{name: "extensions/", mode: fs.ModeDir | 0o755}
	bin := func(data []byte) entry { return entry{name: "extensions/lambda-otel", mode: 0o755, data: data} }

	for _, tc := range []struct {
		name    string
		entries []entry
		want    string // "" when Verify must pass
	}{
		{name: "good", entries: []entry{dir, bin(good)}},
		{name: "no directory entry", entries: []entry{bin(good)}},
		{name: "mode 0775", entries: []entry{dir, {name: "extensions/lambda-otel", mode: 0o775, data: good}}},
		{name: "extra entry", entries: []entry{dir, bin(good), {name: "extensions/other", mode: 0o755, data: good}},
			want: "extensions/other: unexpected entry"},
		{name: "extra top-level file", entries: []entry{{name: "README", mode: 0o644}, dir, bin(good)},
			want: "README: unexpected entry"},
		{name: "binary at the root", entries: []entry{{name: "lambda-otel", mode: 0o755, data: good}},
			want: "lambda-otel: unexpected entry"},
		{name: "missing file", entries: []entry{dir},
			want: "extensions/lambda-otel: missing"},
		{name: "empty zip", want: "extensions/lambda-otel: missing"},
		{name: "listed twice", entries: []entry{dir, bin(good), bin(good)},
			want: "extensions/lambda-otel: listed twice"},
		{name: "mode 0644", entries: []entry{dir, {name: "extensions/lambda-otel", mode: 0o644, data: good}},
			want: "extensions/lambda-otel: mode 0644, want 0755"},
		{name: "mode 0700", entries: []entry{dir, {name: "extensions/lambda-otel", mode: 0o700, data: good}},
			want: "extensions/lambda-otel: mode 0700, want 0755"},
		{name: "no Unix mode", entries: []entry{dir, {name: "extensions/lambda-otel", data: good}},
			want: "extensions/lambda-otel: mode 0666, want 0755"},
		{name: "not ELF", entries: []entry{dir, bin([]byte("#!/bin/sh\nexec true\n"))},
			want: "extensions/lambda-otel: not an ELF file"},
		{name: "wrong machine", entries: []entry{dir, bin(with(func(f *fakeELF) { f.machine = elf.EM_AARCH64 }))},
			want: "extensions/lambda-otel: ELF machine EM_AARCH64, want EM_X86_64"},
		{name: "32-bit", entries: []entry{dir, bin(with(func(f *fakeELF) { f.class = elf.ELFCLASS32 }))},
			want: "extensions/lambda-otel: ELF class ELFCLASS32, want ELFCLASS64"},
		{name: "shared object", entries: []entry{dir, bin(with(func(f *fakeELF) { f.typ = elf.ET_DYN }))},
			want: "extensions/lambda-otel: ELF type ET_DYN, want ET_EXEC"},
		{name: "interpreter", entries: []entry{dir, bin(with(func(f *fakeELF) { f.progs = append(f.progs, elf.PT_INTERP) }))},
			want: "extensions/lambda-otel: dynamically linked (PT_INTERP program header)"},
		{name: "needs a library", entries: []entry{dir, bin(with(func(f *fakeELF) { f.needed = []string{"libc.so.6"} }))},
			want: "extensions/lambda-otel: dynamically linked (needs libc.so.6)"},
		{name: "symbol table", entries: []entry{dir, bin(with(func(f *fakeELF) { f.sections = []string{".text", ".symtab"} }))},
			want: "extensions/lambda-otel: not stripped (has .symtab)"},
		{name: "DWARF", entries: []entry{dir, bin(with(func(f *fakeELF) { f.sections = []string{".debug_info"} }))},
			want: "extensions/lambda-otel: not stripped (has .debug_info)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTestZip(t, tc.entries...)
			err := Verify(path, Archs[0])
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), path+": "+tc.want) {
				t.Fatalf("Verify: %v, want an error starting %q", err, path+": "+tc.want)
			}
		})
	}
}

func TestVerifyNotZip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layer.zip")
	if err := os.WriteFile(path, goodELF().bytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path, Archs[0]); err == nil || !strings.HasPrefix(err.Error(), "opening "+path+": ") {
		t.Errorf("Verify: %v, want an error opening the zip", err)
	}
}
