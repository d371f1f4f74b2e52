package convert

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// mib is the number of bytes in the platform's "MB".
const mib = 1 << 20

// Resource is what is known of the function before any telemetry arrives: its
// configuration and environment. The converter adds what the telemetry tells it (the
// instance id, the function ARN).
type Resource struct {
	// ServiceName is OTEL_SERVICE_NAME; empty falls back to the function name.
	ServiceName string
	// Attributes are OTEL_RESOURCE_ATTRIBUTES, which override detected values.
	Attributes []Attribute
	// FunctionName and FunctionVersion come from the register response (or
	// AWS_LAMBDA_FUNCTION_NAME and AWS_LAMBDA_FUNCTION_VERSION).
	FunctionName    string
	FunctionVersion string
	// Region is AWS_REGION.
	Region string
	// AccountID comes from the register response; empty until the first invocation's ARN
	// supplies it.
	AccountID string
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
	MemoryMB int
	// LogGroup is the function's CloudWatch log group. Extensions are not given
	// AWS_LAMBDA_LOG_GROUP_NAME, so when it is empty the default group of the function's
	// name is assumed; OTEL_RESOURCE_ATTRIBUTES can name a custom one.
	LogGroup string
	// Version is the extension's own version.
	Version string
}

// Attribute is a resource attribute set by the user.
type Attribute struct{ Key, Value string }

// ParseResourceAttributes reads OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value pairs
// with percent-encoded values. As the OpenTelemetry specification asks, a value with any
// error is refused whole rather than applied in part.
func ParseResourceAttributes(s string) ([]Attribute, error) {
	var attrs []Attribute
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not a key=value pair", pair)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("the value of %q is not percent-encoded properly: %w", k, err)
		}
		attrs = append(attrs, Attribute{Key: k, Value: dv})
	}
	return attrs, nil
}

// learned is what the telemetry has told the converter about the function.
type learned struct {
	instanceID  string
	maxMemoryMB int64
	arn         string
}

// instance keeps what an init or restore tells of the execution environment.
func (l *learned) instance(id string, maxMemoryMB telemetry.Int) {
	l.instanceID = cmp.Or(id, l.instanceID)
	l.maxMemoryMB = cmp.Or(int64(maxMemoryMB), l.maxMemoryMB)
}

// fill writes the resource: detected values first, then the user's, which win.
func (r *Resource) fill(m pcommon.Map, l learned) {
	put := func(k, v string) {
		if v != "" {
			m.PutStr(k, v)
		}
	}
	put(string(semconv.CloudProviderKey), semconv.CloudProviderAWS.Value.AsString())
	put(string(semconv.CloudPlatformKey), semconv.CloudPlatformAWSLambda.Value.AsString())
	region, account := r.Region, r.AccountID
	if a := parseARN(l.arn); a.ok {
		region = cmp.Or(region, a.region)
		account = cmp.Or(account, a.account)
		id := a.function
		if v := r.FunctionVersion; v != "" && v != "$LATEST" {
			id += ":" + v
		}
		put(string(semconv.CloudResourceIDKey), id)
	}
	put(string(semconv.CloudRegionKey), region)
	put(string(semconv.CloudAccountIDKey), account)
	put(string(semconv.FaaSNameKey), r.FunctionName)
	put(string(semconv.FaaSVersionKey), r.FunctionVersion)
	put(string(semconv.FaaSInstanceKey), l.instanceID)
	if mem := cmp.Or(int64(r.MemoryMB), l.maxMemoryMB); mem > 0 {
		m.PutInt(string(semconv.FaaSMaxMemoryKey), mem*mib)
	}
	if group := cmp.Or(r.LogGroup, defaultLogGroup(r.FunctionName)); group != "" {
		m.PutEmptySlice(string(semconv.AWSLogGroupNamesKey)).AppendEmpty().SetStr(group)
	}
	put(string(semconv.ServiceNameKey), cmp.Or(r.FunctionName, "unknown_service"))
	put(string(semconv.ServiceVersionKey), r.FunctionVersion)
	put(string(semconv.TelemetrySDKNameKey), scopeName)
	put(string(semconv.TelemetrySDKVersionKey), r.Version)
	for _, a := range r.Attributes {
		m.PutStr(a.Key, a.Value)
	}
	put(string(semconv.ServiceNameKey), r.ServiceName)
}

func defaultLogGroup(function string) string {
	if function == "" {
		return ""
	}
	return "/aws/lambda/" + function
}

// arn is a Lambda function ARN split into the parts the resource needs.
type arn struct {
	ok              bool
	region, account string
	// function is the ARN without a version or alias qualifier.
	function string
}

// parseARN reads arn:partition:lambda:region:account:function:name[:qualifier].
func parseARN(s string) arn {
	parts := strings.SplitN(s, ":", 8)
	if len(parts) < 7 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" || parts[6] == "" {
		return arn{}
	}
	return arn{ok: true, region: parts[3], account: parts[4], function: strings.Join(parts[:7], ":")}
}
