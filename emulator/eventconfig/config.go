// Package eventconfig is Lambda's event-invoke configuration API (2019-09-25) for one
// function: how its asynchronous invocations are retried, how old an event may grow, and
// where their records go, per version or alias. Store holds the configurations and
// Store.Handler serves Put, Update, Get, Delete and List over HTTP with the API's status
// codes and error bodies, so the AWS CLI and SDKs can be pointed at it.
package eventconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/arn"
)

// Ranges of the settings, and Lambda's values when they are not set.
const (
	MinRetryAttempts     = 0
	MaxRetryAttempts     = 2
	MinEventAgeSeconds   = 60
	MaxEventAgeSeconds   = 21600
	DefaultRetryAttempts = MaxRetryAttempts
	DefaultEventAge      = MaxEventAgeSeconds * time.Second
	// maxDestination is the length limit of a destination ARN.
	maxDestination = 350
)

// Destination is one side of a DestinationConfig; an empty ARN is none.
type Destination struct {
	Destination string `json:"Destination,omitempty"`
}

// DestinationConfig is where records of asynchronous invocations go. The API answers with
// both sides, an unset one as {}.
type DestinationConfig struct {
	OnSuccess Destination `json:"OnSuccess"`
	OnFailure Destination `json:"OnFailure"`
}

// Config is a stored configuration, as Put, Update, Get and List answer it. Settings that
// were never set are left out, and Lambda's defaults apply.
type Config struct {
	DestinationConfig        DestinationConfig `json:"DestinationConfig"`
	FunctionArn              string            `json:"FunctionArn"`
	LastModified             Timestamp         `json:"LastModified"`
	MaximumEventAgeInSeconds *int              `json:"MaximumEventAgeInSeconds,omitempty"`
	MaximumRetryAttempts     *int              `json:"MaximumRetryAttempts,omitempty"`
}

// Timestamp is a time the API writes as Unix epoch seconds with a fraction, 1573686021.479.
type Timestamp time.Time

// MarshalJSON writes the seconds with milliseconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}

// UnmarshalJSON reads epoch seconds, with or without a fraction.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("reading LastModified %s: want epoch seconds", b)
	}
	*t = Timestamp(time.UnixMilli(int64(f*1000 + 0.5)))
	return nil
}

// Input is the body of Put and Update. A nil field was not given: Put then removes the
// setting and Update leaves it as it is.
type Input struct {
	DestinationConfig        *DestinationInput `json:"DestinationConfig"`
	MaximumEventAgeInSeconds *int              `json:"MaximumEventAgeInSeconds"`
	MaximumRetryAttempts     *int              `json:"MaximumRetryAttempts"`
}

// DestinationInput is a DestinationConfig as a request gives it, a side left out being nil.
type DestinationInput struct {
	OnSuccess *Destination `json:"OnSuccess"`
	OnFailure *Destination `json:"OnFailure"`
}

// Settings are what an asynchronous invocation follows: a configuration with Lambda's
// defaults for what it does not set.
type Settings struct {
	MaxRetries int
	MaxAge     time.Duration
	// OnSuccess and OnFailure are destination ARNs, empty for none.
	OnSuccess, OnFailure string
}

// settings applies the defaults to c.
func (c Config) settings() Settings {
	s := Settings{MaxRetries: DefaultRetryAttempts, MaxAge: DefaultEventAge,
		OnSuccess: c.DestinationConfig.OnSuccess.Destination, OnFailure: c.DestinationConfig.OnFailure.Destination}
	if c.MaximumRetryAttempts != nil {
		s.MaxRetries = *c.MaximumRetryAttempts
	}
	if c.MaximumEventAgeInSeconds != nil {
		s.MaxAge = time.Duration(*c.MaximumEventAgeInSeconds) * time.Second
	}
	return s
}

// decodeInput reads a request body strictly: a misspelt setting is an error, not a setting
// silently left unset. An empty body is an empty input.
func decodeInput(body []byte, into any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("reading the request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("reading the request body: more than one JSON value")
	}
	return nil
}

// validate checks the input's ranges and destinations; self is the function's own ARN, which
// cannot be its own destination.
func (in Input) validate(self arn.Function) error {
	var problems []string
	check := func(v *int, field string, lo, hi int) {
		switch {
		case v == nil:
		case *v < lo:
			problems = append(problems, fmt.Sprintf("Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", *v, field, lo))
		case *v > hi:
			problems = append(problems, fmt.Sprintf("Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", *v, field, hi))
		}
	}
	check(in.MaximumRetryAttempts, "maximumRetryAttempts", MinRetryAttempts, MaxRetryAttempts)
	check(in.MaximumEventAgeInSeconds, "maximumEventAgeInSeconds", MinEventAgeSeconds, MaxEventAgeSeconds)
	if d := in.DestinationConfig; d != nil {
		for _, side := range []struct {
			name string
			dest *Destination
		}{{"onSuccess", d.OnSuccess}, {"onFailure", d.OnFailure}} {
			if side.dest == nil || side.dest.Destination == "" {
				continue
			}
			if p := checkDestination(side.dest.Destination, self); p != "" {
				problems = append(problems, fmt.Sprintf("Value at 'destinationConfig.%s.destination' failed to satisfy constraint: %s", side.name, p))
			}
		}
	}
	switch len(problems) {
	case 0:
		return nil
	case 1:
		return errors.New("1 validation error detected: " + problems[0])
	}
	return fmt.Errorf("%d validation errors detected: %s", len(problems), strings.Join(problems, "; "))
}

// checkDestination says what is wrong with a destination ARN, or "".
func checkDestination(s string, self arn.Function) string {
	if len(s) > maxDestination {
		return fmt.Sprintf("Member must have length less than or equal to %d", maxDestination)
	}
	r, err := arn.ParseDestination(s)
	switch {
	case err != nil:
		return err.Error()
	case r.Kind == arn.Bucket:
		return fmt.Sprintf("destination %q: S3 buckets receive only the failures of event source mappings; use a Lambda function, an SQS queue, an SNS topic or an EventBridge event bus", s)
	case r.Kind == arn.LambdaFunction && r.Region == self.Region && r.Account == self.Account &&
		strings.Split(r.Target, ":")[1] == self.Name:
		return fmt.Sprintf("destination %q: a function cannot be its own destination", s)
	}
	return ""
}

// put is Put's full replacement: what in leaves out is removed.
func (in Input) put(arn string, now time.Time) Config {
	c := Config{FunctionArn: arn, LastModified: Timestamp(now),
		MaximumEventAgeInSeconds: in.MaximumEventAgeInSeconds, MaximumRetryAttempts: in.MaximumRetryAttempts}
	in.mergeDestinations(&c)
	return c
}

// update is Update's merge into old: what in leaves out stays as it was.
func (in Input) update(old Config, now time.Time) Config {
	c := old
	c.LastModified = Timestamp(now)
	if in.MaximumEventAgeInSeconds != nil {
		c.MaximumEventAgeInSeconds = in.MaximumEventAgeInSeconds
	}
	if in.MaximumRetryAttempts != nil {
		c.MaximumRetryAttempts = in.MaximumRetryAttempts
	}
	in.mergeDestinations(&c)
	return c
}

// mergeDestinations sets each side the input gives; {} or an empty ARN removes it.
func (in Input) mergeDestinations(c *Config) {
	if in.DestinationConfig == nil {
		return
	}
	if d := in.DestinationConfig.OnSuccess; d != nil {
		c.DestinationConfig.OnSuccess = *d
	}
	if d := in.DestinationConfig.OnFailure; d != nil {
		c.DestinationConfig.OnFailure = *d
	}
}
