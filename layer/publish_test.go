package layer

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublishScript runs publish.sh only in dry-run mode, or where it must refuse, always
// with a PATH that holds no aws and a made-up Region, so it can never publish.
func TestPublishScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash:", err)
	}
	script, err := filepath.Abs("publish.sh")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(script)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 != 0o111 {
		t.Errorf("publish.sh has mode %v, want it executable", fi.Mode())
	}
	if out, err := exec.CommandContext(t.Context(), bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n publish.sh: %v\n%s", err, out)
	}

	noAWS := t.TempDir()
	dist := t.TempDir()
	for _, a := range Archs {
		if err := os.WriteFile(filepath.Join(dist, ZipName(a)), []byte("zip"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bash, append([]string{script}, args...)...)
		cmd.Env = append([]string{"PATH=" + noAWS, "DIST_DIR=" + dist}, env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}

	t.Run("dry run", func(t *testing.T) {
		stdout, stderr, code := run(t, []string{"DRY_RUN=1"}, "xx-test-1", "otel-test")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != len(Archs) {
			t.Fatalf("%d commands printed, want %d:\n%s", len(lines), len(Archs), stdout)
		}
		for i, a := range Archs {
			line := lines[i]
			for _, want := range []string{
				"aws lambda publish-layer-version ",
				" --region xx-test-1 ",
				" --layer-name otel-test-" + a.Lambda + " ",
				" --zip-file fileb://" + filepath.Join(dist, ZipName(a)) + " ",
				" --compatible-architectures " + a.Lambda + " ",
				" --query LayerVersionArn --output text",
			} {
				if !strings.Contains(line, want) {
					t.Errorf("command %d does not contain %q:\n%s", i, want, line)
				}
			}
			if n := countRuntimes(line); n == 0 || n > 15 {
				t.Errorf("command %d lists %d compatible runtimes, want 1 to 15 (Lambda's limit)", i, n)
			}
		}
	})
	t.Run("default name", func(t *testing.T) {
		stdout, stderr, code := run(t, []string{"DRY_RUN=1"}, "xx-test-1")
		if code != 0 || !strings.Contains(stdout, " --layer-name lambda-otel-x86_64 ") || !strings.Contains(stdout, " --layer-name lambda-otel-arm64 ") {
			t.Errorf("exit %d, want the default layer names:\n%s%s", code, stdout, stderr)
		}
	})
	t.Run("missing zip", func(t *testing.T) {
		_, stderr, code := run(t, []string{"DRY_RUN=1", "DIST_DIR=" + t.TempDir()}, "xx-test-1")
		if code != 1 || !strings.Contains(stderr, "lambda-otel-x86_64.zip is missing: run make layer") {
			t.Errorf("exit %d, stderr %q, want a refusal pointing to make layer", code, stderr)
		}
	})
	t.Run("no aws", func(t *testing.T) {
		stdout, stderr, code := run(t, nil, "xx-test-1")
		if code != 1 || stdout != "" || !strings.Contains(stderr, "aws (the AWS CLI) is not on PATH") {
			t.Errorf("exit %d, stdout %q, stderr %q, want a refusal naming aws", code, stdout, stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		_, stderr, code := run(t, []string{"DRY_RUN=1"})
		if code != 2 || !strings.Contains(stderr, "usage: layer/publish.sh REGION [NAME]") {
			t.Errorf("exit %d, stderr %q, want the usage", code, stderr)
		}
	})
}

// countRuntimes counts the words after --compatible-runtimes up to the next flag.
func countRuntimes(command string) int {
	words := strings.Fields(command)
	for i, w := range words {
		if w != "--compatible-runtimes" {
			continue
		}
		n := 0
		for _, r := range words[i+1:] {
			if strings.HasPrefix(r, "--") {
				break
			}
			n++
		}
		return n
	}
	return 0
}
