package layer

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestTemplates checks that each template's function uses the template's layer, traces
// actively, exports to an endpoint, and takes the OTLP headers from a hidden parameter.
func TestTemplates(t *testing.T) {
	for _, tc := range []struct {
		file, function, layer string
		tracing               []string // the property path that must be Active
	}{
		{"sam/template.yaml", "AWS::Serverless::Function", "AWS::Serverless::LayerVersion", []string{"Tracing"}},
		{"cloudformation/layer.yaml", "AWS::Lambda::Function", "AWS::Lambda::LayerVersion", []string{"TracingConfig", "Mode"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			root := doc.Content[0]
			resources := get(root, "Resources")
			var fn *yaml.Node
			for i := 0; i+1 < len(resources.Content); i += 2 {
				if get(resources.Content[i+1], "Type").Value == tc.function {
					fn = get(resources.Content[i+1], "Properties")
				}
			}
			if fn == nil {
				t.Fatalf("no %s resource", tc.function)
			}

			layers := get(fn, "Layers")
			if layers == nil || len(layers.Content) != 1 {
				t.Fatalf("the function lists layers %v, want one", layers)
			}
			ref := refName(layers.Content[0])
			if typ := get(get(resources, ref), "Type").Value; typ != tc.layer {
				t.Errorf("the function's layer %q is a %q, want a %s", ref, typ, tc.layer)
			}

			if mode := get(fn, tc.tracing...).Value; mode != "Active" {
				t.Errorf("%s is %q, want Active", strings.Join(tc.tracing, "."), mode)
			}

			vars := get(fn, "Environment", "Variables")
			for _, name := range []string{"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
				if get(vars, name) == nil {
					t.Errorf("the function's environment does not set %s", name)
				}
			}
			headers := get(vars, "OTEL_EXPORTER_OTLP_HEADERS")
			if headers == nil {
				t.Fatal("the function's environment does not set OTEL_EXPORTER_OTLP_HEADERS")
			}
			param := get(root, "Parameters", refName(headers))
			if get(param, "NoEcho").Value != "true" {
				t.Errorf("OTEL_EXPORTER_OTLP_HEADERS is %q, want a reference to a NoEcho parameter", headers.Value)
			}
		})
	}
}

// TestExampleVariables checks that every OTEL_ or LAMBDA_OTEL_ variable the examples set is
// one the extension reads, so a typo or a renamed variable cannot go unnoticed.
func TestExampleVariables(t *testing.T) {
	known := knownVariables(t)
	files := []string{"sam/template.yaml", "cloudformation/layer.yaml", "terraform/main.tf", "terraform/variables.tf"}
	varName := regexp.MustCompile(`\b(?:LAMBDA_)?OTEL_[A-Z0-9_]+`)
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := varName.FindAllString(string(b), -1)
		if file != "terraform/variables.tf" && len(names) == 0 {
			t.Errorf("%s sets no OTEL_ variable", file)
		}
		for _, name := range names {
			if !known[name] {
				t.Errorf("%s: %s is not a variable the extension reads", file, name)
			}
		}
	}

	tf, err := os.ReadFile("terraform/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"layers           = [aws_lambda_layer_version.lambda_otel.arn]",
		"OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint",
		"OTEL_EXPORTER_OTLP_HEADERS  = var.otlp_headers",
		"source_code_hash         = filebase64sha256(local.layer_zip)",
	} {
		if !strings.Contains(string(tf), want) {
			t.Errorf("terraform/main.tf does not contain %q", want)
		}
	}
}

// knownVariables are the variables the extension reads: the values of the exported Env*
// constants of the extension and exporters packages, and the OTEL_EXPORTER_OTLP_* family
// the exporters read by prefix, as the README's configuration table lists them.
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, dir := range []string{"../extension", "../exporters"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				gen, ok := decl.(*ast.GenDecl)
				if !ok || gen.Tok != token.CONST {
					continue
				}
				for _, spec := range gen.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !name.IsExported() || !strings.HasPrefix(name.Name, "Env") || i >= len(vs.Values) {
							continue
						}
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, err := strconv.Unquote(lit.Value)
							if err != nil {
								t.Fatal(err)
							}
							known[v] = true
						}
					}
				}
			}
		}
	}
	if !known["OTEL_SERVICE_NAME"] || !known["LAMBDA_OTEL_FLUSH"] {
		t.Fatalf("found %v in the extension's Env constants, which lack OTEL_SERVICE_NAME or LAMBDA_OTEL_FLUSH", known)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("`(OTEL_EXPORTER_OTLP_[A-Z0-9_]+)`").FindAllStringSubmatch(string(readme), -1) {
		known[m[1]] = true
	}
	return known
}

// get follows keys through nested mappings; it returns an empty node when a key is
// missing, so that chains of lookups need no checks.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, key := range keys {
		var next *yaml.Node
		if n != nil && n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
				}
			}
		}
		if next == nil {
			return &yaml.Node{}
		}
		n = next
	}
	return n
}

// refName is the logical name a !Ref short tag or a {Ref: name} mapping refers to.
func refName(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!Ref" {
		return n.Value
	}
	return get(n, "Ref").Value
}
