package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readVariables are the variables the extension reads, found in its source: the string
// constants named Env* in the configuration files, and the OTEL_EXPORTER_OTLP_ settings
// the exporters look up by suffix.
func readVariables(t *testing.T) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	fset := token.NewFileSet()
	for _, path := range []string{"../../extension/config.go", "../../exporters/config.go"} {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if strings.HasPrefix(name.Name, "Env") && i < len(n.Values) {
						vars[stringLit(t, n.Values[i])] = true
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "setting" && len(n.Args) == 1 {
					vars["OTEL_EXPORTER_OTLP_"+stringLit(t, n.Args[0])] = true
				}
			}
			return true
		})
	}
	if len(vars) < 20 {
		t.Fatalf("found only %d variables in the source: %v", len(vars), slices.Sorted(maps.Keys(vars)))
	}
	return vars
}

func stringLit(t *testing.T, e ast.Expr) string {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		t.Fatalf("not a string literal: %#v", e)
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The README's configuration table names every variable the extension reads, and only
// those, so that users can trust it.
func TestREADMEConfigurationTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## Configuration\n")
	if start < 0 {
		t.Fatal("README.md has no Configuration section")
	}
	section := readme[start+1:]
	section = section[:strings.Index(section[3:], "\n## ")+3]

	documented := map[string]bool{}
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range regexp.MustCompile("`((?:LAMBDA_)?OTEL_[A-Z_]+)`").FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	read := readVariables(t)
	for v := range read {
		if !documented[v] {
			t.Errorf("%s is read by the extension but missing from the README's configuration table", v)
		}
	}
	for v := range documented {
		if !read[v] {
			t.Errorf("%s is in the README's configuration table but the extension does not read it", v)
		}
	}
}
