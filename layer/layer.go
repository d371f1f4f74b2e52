// Package layer packages the lambda-otel extension as Lambda layers, one zip per
// architecture, and checks a zip the way Lambda will use it: Lambda extracts a layer into
// /opt and starts every file in /opt/extensions as an external extension, so the zip must
// hold one executable, extensions/lambda-otel, that is a static Linux binary for the
// function's architecture.
package layer

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Arch is one architecture Lambda runs functions on, under the name each tool knows it by.
type Arch struct {
	// Lambda is the name Lambda's API uses (Architectures, CompatibleArchitectures); it is
	// also the suffix of the zip's and the published layer's names.
	Lambda string
	// GOARCH is the Go toolchain's name.
	GOARCH string
	// Machine is the ELF e_machine of a binary for it.
	Machine elf.Machine
}

// Archs are the architectures Lambda offers, in the order Build produces them.
var Archs = []Arch{
	{Lambda: "x86_64", GOARCH: "amd64", Machine: elf.EM_X86_64},
	{Lambda: "arm64", GOARCH: "arm64", Machine: elf.EM_AARCH64},
}

// ParseArch finds an architecture by its Lambda or its Go name, so that command lines
// accept both x86_64 and amd64.
func ParseArch(name string) (Arch, error) {
	for _, a := range Archs {
		if name == a.Lambda || name == a.GOARCH {
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("unknown architecture %q: want x86_64 (amd64) or arm64", name)
}

const (
	// ExtensionName is the executable's file name. Lambda takes a file's name in
	// /opt/extensions as the extension's name, and the extension registers under the
	// name it was started as.
	ExtensionName = "lambda-otel"
	// DirEntry is the zip's directory entry for extensions/. Lambda does not need it,
	// since extracting the file creates the directory, but unzip tools list it.
	DirEntry = "extensions/"
	// BinaryEntry is the executable's path in the zip, extracted to
	// /opt/extensions/lambda-otel.
	BinaryEntry = DirEntry + ExtensionName
	// MainPackage is the extension's main package, relative to the module root.
	MainPackage = "./cmd/lambda-otel"
)

// BinaryBudget is the largest extension binary, in bytes, that Build packages. Every cold
// start downloads, extracts and starts the binary, and the project's target is under
// 12 MB. The stripped binary measured 8.9 MB for amd64 and 8.3 MB for arm64 when this was
// set; the budget leaves about 1.5 MB for growth, so a dependency that adds megabytes is
// noticed at `make layer` rather than in cold starts. Raise it here, in review.
const BinaryBudget = 10 << 20

// ZipName is the file name of the layer zip for arch.
func ZipName(arch Arch) string {
	return ExtensionName + "-" + arch.Lambda + ".zip"
}

// Options says what Build builds and where.
type Options struct {
	// Dir is the module root, where the go command runs; empty means the current
	// directory.
	Dir string
	// Out is the directory the zips are written to, created when missing; empty means
	// "dist".
	Out string
	// Budget is the largest binary accepted, in bytes; zero means BinaryBudget.
	Budget int64
	// Archs are the architectures to build; empty means all of Archs.
	Archs []Arch
	// Report receives one line per zip written; nil discards them.
	Report io.Writer
}

// Result describes one zip Build wrote.
type Result struct {
	// Arch is the architecture the zip is for.
	Arch Arch
	// Zip is the zip's path.
	Zip string
	// BinarySize and ZipSize are in bytes.
	BinarySize, ZipSize int64
	// SHA256 is the zip's digest.
	SHA256 [sha256.Size]byte
}

// CodeSha256 is the zip's digest as Lambda reports it in publish-layer-version's
// Content.CodeSha256 and Terraform computes it with filebase64sha256, so that a published
// version can be matched to a local build.
func (r Result) CodeSha256() string {
	return base64.StdEncoding.EncodeToString(r.SHA256[:])
}

// String is the report line of the zip.
func (r Result) String() string {
	return fmt.Sprintf("%s: %s binary %d bytes (%s), zip %d bytes (%s), sha256 %s, CodeSha256 %s",
		r.Zip, r.Arch.Lambda, r.BinarySize, mib(r.BinarySize), r.ZipSize, mib(r.ZipSize),
		hex.EncodeToString(r.SHA256[:]), r.CodeSha256())
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Build writes a verified layer zip for each architecture of opts and reports each on
// opts.Report. It stops at the first failure, leaving the zips already written in place.
func Build(ctx context.Context, opts Options) ([]Result, error) {
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Out == "" {
		opts.Out = "dist"
	}
	if opts.Budget == 0 {
		opts.Budget = BinaryBudget
	}
	if len(opts.Archs) == 0 {
		opts.Archs = Archs
	}
	if opts.Report == nil {
		opts.Report = io.Discard
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating the output directory: %w", err)
	}
	tmp, err := os.MkdirTemp("", "lambda-otel-layer-")
	if err != nil {
		return nil, fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	var results []Result
	for _, arch := range opts.Archs {
		r, err := buildZip(ctx, opts, arch, filepath.Join(tmp, arch.Lambda, ExtensionName))
		if err != nil {
			return results, err
		}
		fmt.Fprintln(opts.Report, r)
		results = append(results, r)
	}
	return results, nil
}

// buildZip builds the binary for arch at bin, then the zip from it.
func buildZip(ctx context.Context, opts Options, arch Arch, bin string) (Result, error) {
	r := Result{Arch: arch, Zip: filepath.Join(opts.Out, ZipName(arch))}
	if err := BuildBinary(ctx, opts.Dir, arch, bin); err != nil {
		return r, fmt.Errorf("%s: %w", r.Zip, err)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return r, fmt.Errorf("%s: reading the binary: %w", r.Zip, err)
	}
	r.BinarySize = int64(len(binary))
	if err := CheckBudget(arch, r.BinarySize, opts.Budget); err != nil {
		return r, fmt.Errorf("%s: %w", r.Zip, err)
	}
	if err := WriteZip(r.Zip, binary); err != nil {
		return r, err
	}
	if err := Verify(r.Zip, arch); err != nil {
		// A zip that fails its check is never left for publish.sh to upload.
		os.Remove(r.Zip)
		return r, err
	}
	z, err := os.ReadFile(r.Zip)
	if err != nil {
		return r, fmt.Errorf("reading back %s: %w", r.Zip, err)
	}
	r.ZipSize = int64(len(z))
	r.SHA256 = sha256.Sum256(z)
	return r, nil
}

// BuildBinary compiles the extension for arch into out, as the layer ships it: a static
// binary (CGO_ENABLED=0, as Lambda's runtimes differ in their C libraries), without local
// paths (-trimpath), and without the symbol table and DWARF (-s -w), which only a debugger
// needs and which would make the binary about 40% larger. The version control state is
// stamped even where GOFLAGS turns it off, because the extension reports its version
// (telemetry.sdk.version) from it; where git cannot tell it, the binary is built without.
func BuildBinary(ctx context.Context, moduleDir string, arch Arch, out string) error {
	// go build resolves a relative -o against its own working directory, moduleDir.
	out, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("resolving the binary's path: %w", err)
	}
	build := func(vcs string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs="+vcs, "-trimpath", "-ldflags=-s -w", "-o", out, MainPackage)
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch.GOARCH)
		return cmd.CombinedOutput()
	}
	output, err := build("auto")
	if err != nil && strings.Contains(string(output), "error obtaining VCS status") {
		output, err = build("false")
	}
	if err != nil {
		return fmt.Errorf("building %s for %s: %w\n%s", ExtensionName, arch.Lambda, err, strings.TrimSpace(string(output)))
	}
	return nil
}

// CheckBudget refuses a binary of size bytes that is over budget.
func CheckBudget(arch Arch, size, budget int64) error {
	if size <= budget {
		return nil
	}
	return fmt.Errorf("%s for %s is %s (%d bytes), over the budget of %s (%d bytes); the default is BinaryBudget in layer/layer.go",
		ExtensionName, arch.Lambda, mib(size), size, mib(budget), budget)
}
