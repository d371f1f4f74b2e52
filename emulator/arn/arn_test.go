package arn

import (
	"strings"
	"testing"
)

func TestParseFunction(t *testing.T) {
	tests := []struct {
		in      string
		want    Function
		wantErr string
	}{
		{in: "my-function", want: Function{Name: "my-function"}},
		{in: "my-function:v1", want: Function{Name: "my-function", Qualifier: "v1"}},
		{in: "my-function:$LATEST", want: Function{Name: "my-function", Qualifier: "$LATEST"}},
		{in: "123456789012:function:my-function", want: Function{Account: "123456789012", Name: "my-function"}},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:my-function", want: Function{"aws", "us-west-2", "123456789012", "my-function", ""}},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:my-function:7", want: Function{"aws", "us-west-2", "123456789012", "my-function", "7"}},
		{in: "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f", want: Function{"aws-us-gov", "us-gov-west-1", "123456789012", "f", ""}},
		{in: "", wantErr: "Member must have length between 1 and 140"},
		{in: "my function", wantErr: "Member must satisfy regular expression pattern"},
		{in: "my-function:v1:v2", wantErr: "Member must satisfy regular expression pattern"},
		{in: "arn:aws:sqs:us-east-1:123456789012:queue", wantErr: "Member must satisfy regular expression pattern"},
		{in: strings.Repeat("f", 65), wantErr: "less than or equal to 64 when it is a name alone"},
		{in: "arn:aws:lambda:us-west-2:123456789012:function:" + strings.Repeat("f", 94), wantErr: "between 1 and 140"},
	}
	for _, tt := range tests {
		got, err := ParseFunction(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseFunction(%q) error = %v, want one with %q", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("ParseFunction(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestCheckQualifier(t *testing.T) {
	for q, ok := range map[string]bool{"": true, "$LATEST": true, "v1_blue-2": true, "a b": false, strings.Repeat("q", 129): false} {
		if err := CheckQualifier(q); (err == nil) != ok {
			t.Errorf("CheckQualifier(%q) = %v, want valid %v", q, err, ok)
		}
	}
}

func TestParseDestination(t *testing.T) {
	tests := []struct {
		in      string
		kind    Kind
		fifo    bool
		wantErr string
	}{
		{in: "arn:aws:sqs:us-east-1:123456789012:destination", kind: Queue},
		{in: "arn:aws:sqs:us-east-1:123456789012:orders.fifo", kind: Queue, fifo: true},
		{in: "arn:aws:sns:us-east-1:123456789012:my-topic", kind: Topic},
		{in: "arn:aws:events:us-east-1:123456789012:event-bus/default", kind: EventBus},
		{in: "arn:aws:lambda:us-east-1:123456789012:function:on-failure", kind: LambdaFunction},
		{in: "arn:aws:lambda:us-east-1:123456789012:function:on-failure:live", kind: LambdaFunction},
		{in: "arn:aws:s3:::my-bucket", kind: Bucket},
		{in: "arn:aws:dynamodb:us-east-1:123456789012:table/t", wantErr: `service "dynamodb" cannot receive invocation records`},
		{in: "arn:aws:lambda:us-east-1:123456789012:layer:l:1", wantErr: "not a valid resource in an ARN of kind Lambda function"},
		{in: "arn:aws:events:us-east-1:123456789012:rule/r", wantErr: "not a valid resource in an ARN of kind EventBridge event bus"},
		{in: "arn:aws:sqs:::queue", wantErr: "has a region and an account"},
		{in: "sqs://queue", wantErr: "is not an ARN"},
	}
	for _, tt := range tests {
		got, err := ParseDestination(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseDestination(%q) error = %v, want one with %q", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got.Kind != tt.kind || got.Fifo() != tt.fifo || got.ARN != tt.in):
			t.Errorf("ParseDestination(%q) = %+v (fifo %v), %v; want kind %v, fifo %v", tt.in, got, got.Fifo(), err, tt.kind, tt.fifo)
		}
	}
}
