// Package arn reads the names Lambda's APIs take for a function (a name, a partial ARN or a
// full ARN, each with an optional version or alias) and the ARNs of the services an
// asynchronous invocation's records go to.
package arn

import (
	"fmt"
	"regexp"
	"strings"
)

// Limits of the FunctionName parameter: the whole name or ARN, and a bare name.
const (
	maxFunctionName = 140
	maxBareName     = 64
	maxQualifier    = 128
)

// functionPattern is the API's FunctionName pattern, anchored, with the parts captured:
// partition, region, account, name and qualifier.
var functionPattern = regexp.MustCompile(`^(?:arn:(aws[a-zA-Z-]*)?:lambda:)?(?:([a-z]{2}(?:-gov)?-[a-z]+-\d):)?(?:(\d{12}):)?(?:function:)?([a-zA-Z0-9-_]+)(?::(\$LATEST|[a-zA-Z0-9-_]+))?$`)

// qualifierPattern is the API's Qualifier pattern, without its empty alternative: an empty
// Qualifier parameter means none.
var qualifierPattern = regexp.MustCompile(`^[a-zA-Z0-9$_-]+$`)

// Function is a function as an API call named it. Parts the name left out are empty.
type Function struct {
	Partition, Region, Account, Name, Qualifier string
}

// ParseFunction reads a FunctionName parameter. The error is the API's validation message,
// naming the parameter and the constraint it broke.
func ParseFunction(s string) (Function, error) {
	if len(s) < 1 || len(s) > maxFunctionName {
		return Function{}, fmt.Errorf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must have length between 1 and %d", s, maxFunctionName)
	}
	m := functionPattern.FindStringSubmatch(s)
	if m == nil {
		return Function{}, fmt.Errorf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", s, strings.Trim(functionPattern.String(), "^$"))
	}
	f := Function{Partition: m[1], Region: m[2], Account: m[3], Name: m[4], Qualifier: m[5]}
	if f.Partition == "" && f.Account == "" && len(s) > maxBareName {
		return Function{}, fmt.Errorf("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to %d when it is a name alone", s, maxBareName)
	}
	return f, nil
}

// CheckQualifier validates a Qualifier parameter; empty is none, and valid.
func CheckQualifier(q string) error {
	if q == "" {
		return nil
	}
	if len(q) > maxQualifier || !qualifierPattern.MatchString(q) {
		return fmt.Errorf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must have length between 1 and %d and satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)", q, maxQualifier)
	}
	return nil
}

// FunctionARN is the ARN of a function in a partition, region and account, qualified when
// qualifier is not empty.
func FunctionARN(partition, region, account, name, qualifier string) string {
	s := "arn:" + partition + ":lambda:" + region + ":" + account + ":function:" + name
	if qualifier != "" {
		s += ":" + qualifier
	}
	return s
}

// Kind is the kind of service a destination ARN names.
type Kind int

// The destinations of asynchronous invocation records. Buckets are a destination of event
// source mappings only, which asynchronous invocation refuses.
const (
	Unknown Kind = iota
	LambdaFunction
	Queue
	Topic
	EventBus
	Bucket
)

var kindNames = [...]string{"unknown", "Lambda function", "SQS queue", "SNS topic", "EventBridge event bus", "S3 bucket"}

func (k Kind) String() string { return kindNames[k] }

// Resource is a destination ARN's parts.
type Resource struct {
	ARN                                string
	Kind                               Kind
	Partition, Region, Account, Target string
}

// Fifo reports whether the resource is a FIFO queue or topic, which Lambda cannot deliver
// records to.
func (r Resource) Fifo() bool {
	return (r.Kind == Queue || r.Kind == Topic) && strings.HasSuffix(r.Target, ".fifo")
}

// destinationPattern is the shape of a destination ARN: arn:partition:service:region:account:resource.
var destinationPattern = regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):([a-z0-9-]+):([a-z]{2}(?:-gov)?-[a-z]+-\d)?:(\d{12})?:(.+)$`)

// targetPatterns are the resource parts each kind's ARN has.
var targetPatterns = map[Kind]*regexp.Regexp{
	LambdaFunction: regexp.MustCompile(`^function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?$`),
	Queue:          regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}(\.fifo)?$`),
	Topic:          regexp.MustCompile(`^[a-zA-Z0-9_-]{1,256}(\.fifo)?$`),
	EventBus:       regexp.MustCompile(`^event-bus/[a-zA-Z0-9._\-/]{1,256}$`),
	Bucket:         regexp.MustCompile(`^[a-z0-9.-]{3,63}$`),
}

var services = map[string]Kind{"lambda": LambdaFunction, "sqs": Queue, "sns": Topic, "events": EventBus, "s3": Bucket}

// ParseDestination reads a destination ARN. The error says what is wrong with it and which
// kinds are accepted.
func ParseDestination(s string) (Resource, error) {
	m := destinationPattern.FindStringSubmatch(s)
	if m == nil {
		return Resource{}, fmt.Errorf("destination %q is not an ARN (arn:partition:service:region:account:resource)", s)
	}
	r := Resource{ARN: s, Kind: services[m[2]], Partition: m[1], Region: m[3], Account: m[4], Target: m[5]}
	switch {
	case r.Kind == Unknown:
		return Resource{}, fmt.Errorf("destination %q: service %q cannot receive invocation records; use a Lambda function, an SQS queue, an SNS topic or an EventBridge event bus", s, m[2])
	case !targetPatterns[r.Kind].MatchString(r.Target):
		return Resource{}, fmt.Errorf("destination %q: %q is not a valid resource in an ARN of kind %s", s, r.Target, r.Kind)
	case r.Kind != Bucket && (r.Region == "" || r.Account == ""):
		return Resource{}, fmt.Errorf("destination %q: an ARN of kind %s has a region and an account", s, r.Kind)
	}
	return r, nil
}
