package emulator

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// hostPassThrough are the host's variables an environment keeps: the path, so that local
// programs are found, and the caller's AWS credentials, which Lambda would take from the
// execution role.
var hostPassThrough = []string{"PATH", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// vars is an ordered environment in which a later Set replaces an earlier one.
type vars struct {
	keys []string
	vals map[string]string
}

func (v *vars) Set(k, val string) {
	if v.vals == nil {
		v.vals = map[string]string{}
	}
	if _, ok := v.vals[k]; !ok {
		v.keys = append(v.keys, k)
	}
	v.vals[k] = val
}

func (v *vars) Has(k string) bool { _, ok := v.vals[k]; return ok }

func (v *vars) list(skip []string) []string {
	out := make([]string, 0, len(v.keys))
	for _, k := range v.keys {
		if !slices.Contains(skip, k) {
			out = append(out, k+"="+v.vals[k])
		}
	}
	return out
}

// environmentVariables returns the runtime's and the extensions' environments, as
// runtime-api.md §7 and extensions-api.md §9 list them.
func (c Config) environmentVariables(runtimeAPI, logStream, initType string) (runtime, extensions []string) {
	var v vars
	v.Set("LANG", "en_US.UTF-8")
	v.Set("TZ", ":UTC")
	for _, k := range hostPassThrough {
		if val, ok := os.LookupEnv(k); ok {
			v.Set(k, val)
		}
	}
	if v.Has("AWS_ACCESS_KEY_ID") {
		v.Set("AWS_ACCESS_KEY", v.vals["AWS_ACCESS_KEY_ID"])
	}
	v.Set("_HANDLER", c.Handler)
	v.Set("AWS_REGION", c.Region)
	v.Set("AWS_DEFAULT_REGION", c.Region)
	v.Set("AWS_LAMBDA_FUNCTION_NAME", c.FunctionName)
	v.Set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(c.MemoryMB))
	v.Set("AWS_LAMBDA_FUNCTION_VERSION", c.FunctionVersion)
	v.Set("AWS_LAMBDA_INITIALIZATION_TYPE", initType)
	v.Set("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/"+c.FunctionName)
	v.Set("AWS_LAMBDA_LOG_STREAM_NAME", logStream)
	v.Set("AWS_LAMBDA_LOG_FORMAT", c.LogFormat)
	if c.LogFormat == "JSON" {
		v.Set("AWS_LAMBDA_LOG_LEVEL", "INFO")
	}
	v.Set("AWS_LAMBDA_RUNTIME_API", runtimeAPI)
	v.Set("LAMBDA_TASK_ROOT", c.TaskDir)
	v.Set("LAMBDA_RUNTIME_DIR", c.runtimeDir())
	v.Set("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")
	for _, kv := range c.Env {
		k, val, _ := strings.Cut(kv, "=")
		v.Set(k, val)
	}
	runtime = v.list(nil)
	for _, kv := range c.ExtensionDefaults {
		if k, val, _ := strings.Cut(kv, "="); !v.Has(k) {
			v.Set(k, val)
		}
	}
	return runtime, v.list(hiddenFromExtensions)
}

// runtimeDir is where the runtime lives: the bootstrap's directory when it was given.
func (c Config) runtimeDir() string {
	if c.Bootstrap != "" {
		return filepath.Dir(c.Bootstrap)
	}
	return c.TaskDir
}
