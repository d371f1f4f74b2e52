package convert

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/lambda-otel/lambda-otel/telemetry"
)

// Attribute names: the semantic conventions' where they have one, else under aws.lambda.
// The report's figures keep the platform's units, named in the attribute.
const (
	attrInvocationID = string(semconv.FaaSInvocationIDKey)
	attrColdstart    = string(semconv.FaaSColdstartKey)
	attrTrigger      = string(semconv.FaaSTriggerKey)
	attrInvokedARN   = string(semconv.AWSLambdaInvokedARNKey)
	attrErrorType    = string(semconv.ErrorTypeKey)
	attrFaaSName     = string(semconv.FaaSNameKey)
	attrFaaSVersion  = string(semconv.FaaSVersionKey)
	attrFaaSInstance = string(semconv.FaaSInstanceKey)
	attrMaxMemory    = string(semconv.FaaSMaxMemoryKey)

	attrEventType         = "aws.lambda.event.type"
	attrStatus            = "aws.lambda.status"
	attrIncomplete        = "aws.lambda.incomplete"
	attrOutOfMemory       = "aws.lambda.out_of_memory"
	attrDecodeError       = "aws.lambda.decode_error"
	attrDurationMs        = "aws.lambda.duration_ms"
	attrBilledMs          = "aws.lambda.billed_duration_ms"
	attrMaxMemoryUsedMB   = "aws.lambda.max_memory_used_mb"
	attrMemorySizeMB      = "aws.lambda.memory_size_mb"
	attrInitMs            = "aws.lambda.init_duration_ms"
	attrRestoreMs         = "aws.lambda.restore_duration_ms"
	attrRuntimeMs         = "aws.lambda.runtime_duration_ms"
	attrProducedBytes     = "aws.lambda.produced_bytes"
	attrInitType          = "aws.lambda.initialization_type"
	attrInitPhase         = "aws.lambda.init_phase"
	attrRuntimeVersion    = "aws.lambda.runtime_version"
	attrRuntimeVersionARN = "aws.lambda.runtime_version_arn"
	attrExtensionName     = "aws.lambda.extension.name"
	attrExtensionState    = "aws.lambda.extension.state"
	attrExtensionEvents   = "aws.lambda.extension.events"
	attrSubscribedTypes   = "aws.lambda.subscription.types"
	attrDroppedRecords    = "aws.lambda.logs_dropped.records"
	attrDroppedBytes      = "aws.lambda.logs_dropped.bytes"
	attrDroppedReason     = "aws.lambda.logs_dropped.reason"
)

// recordAttrs puts the fields of a platform record into m. Spans and platform log records
// share it, so a field has one name wherever it appears.
func recordAttrs(m pcommon.Map, r telemetry.Record) {
	str := func(k, v string) {
		if v != "" {
			m.PutStr(k, v)
		}
	}
	num := func(k string, v float64) {
		if v != 0 {
			m.PutDouble(k, v)
		}
	}
	integer := func(k string, v telemetry.Int) {
		if v != 0 {
			m.PutInt(k, int64(v))
		}
	}
	strs := func(k string, vs []string) {
		if len(vs) > 0 {
			s := m.PutEmptySlice(k)
			for _, v := range vs {
				s.AppendEmpty().SetStr(v)
			}
		}
	}
	status := func(st telemetry.Status, errType string) {
		str(attrStatus, string(st))
		str(attrErrorType, errType)
	}
	instance := func(function, version, id string, maxMemoryMB telemetry.Int, runtime, runtimeARN string) {
		str(attrFaaSName, function)
		str(attrFaaSVersion, version)
		str(attrFaaSInstance, id)
		if maxMemoryMB > 0 {
			m.PutInt(attrMaxMemory, int64(maxMemoryMB)*mib)
		}
		str(attrRuntimeVersion, runtime)
		str(attrRuntimeVersionARN, runtimeARN)
	}
	switch r := r.(type) {
	case *telemetry.InitStart:
		str(attrInitType, string(r.InitializationType))
		str(attrInitPhase, string(r.Phase))
		instance(r.FunctionName, r.FunctionVersion, r.InstanceID, r.InstanceMaxMemory, r.RuntimeVersion, r.RuntimeVersionArn)
	case *telemetry.InitRuntimeDone:
		str(attrInitType, string(r.InitializationType))
		str(attrInitPhase, string(r.Phase))
		status(r.Status, r.ErrorType)
	case *telemetry.InitReport:
		str(attrInitType, string(r.InitializationType))
		str(attrInitPhase, string(r.Phase))
		status(r.Status, r.ErrorType)
		num(attrInitMs, r.Metrics.DurationMs)
		integer(attrBilledMs, r.Metrics.BilledDurationMs)
	case *telemetry.RestoreStart:
		instance(r.FunctionName, r.FunctionVersion, r.InstanceID, r.InstanceMaxMemory, r.RuntimeVersion, r.RuntimeVersionArn)
	case *telemetry.RestoreRuntimeDone:
		status(r.Status, r.ErrorType)
	case *telemetry.RestoreReport:
		status(r.Status, r.ErrorType)
		if r.Metrics != nil {
			num(attrRestoreMs, r.Metrics.DurationMs)
			integer(attrBilledMs, r.Metrics.BilledDurationMs)
		}
	case *telemetry.Start:
		str(attrInvocationID, r.RequestID)
		str(attrFaaSVersion, r.Version)
	case *telemetry.RuntimeDone:
		str(attrInvocationID, r.RequestID)
		status(r.Status, r.ErrorType)
		if r.Metrics != nil {
			num(attrRuntimeMs, r.Metrics.DurationMs)
			integer(attrProducedBytes, r.Metrics.ProducedBytes)
		}
	case *telemetry.Report:
		str(attrInvocationID, r.RequestID)
		status(r.Status, r.ErrorType)
		num(attrDurationMs, r.Metrics.DurationMs)
		integer(attrBilledMs, r.Metrics.BilledDurationMs)
		integer(attrMaxMemoryUsedMB, r.Metrics.MaxMemoryUsedMB)
		integer(attrMemorySizeMB, r.Metrics.MemorySizeMB)
		num(attrInitMs, r.Metrics.InitDurationMs)
		num(attrRestoreMs, r.Metrics.RestoreDurationMs)
	case *telemetry.Extension:
		str(attrExtensionName, r.Name)
		str(attrExtensionState, r.State)
		strs(attrExtensionEvents, r.Events)
		str(attrErrorType, r.ErrorType)
	case *telemetry.TelemetrySubscription:
		str(attrExtensionName, r.Name)
		str(attrExtensionState, r.State)
		strs(attrSubscribedTypes, r.Types)
	case *telemetry.LogsDropped:
		m.PutInt(attrDroppedRecords, int64(r.DroppedRecords))
		m.PutInt(attrDroppedBytes, int64(r.DroppedBytes))
		str(attrDroppedReason, r.Reason)
	case *telemetry.Raw:
		str(attrDecodeError, r.Err)
	}
}
