package eventconfig

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lambda-otel/lambda-otel/emulator/arn"
)

// Function is the function a Store configures.
type Function struct {
	Partition, Region, Account, Name string
	// Versions are the qualifiers that exist; $LATEST always does.
	Versions []string
}

// Error is an API error: its HTTP status, its type (X-Amzn-ErrorType) and its message.
type Error struct {
	Status  int
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

func invalid(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf(format, args...)}
}

// Store holds one function's configurations, one per qualifier. It is safe for concurrent
// use.
type Store struct {
	fn  Function
	now func() time.Time

	mu      sync.Mutex
	configs map[string]Config
	// writing marks the qualifiers a write is in progress on; another write meanwhile is the
	// API's conflict.
	writing map[string]bool
	limiter limiter
}

// NewStore returns an empty Store for fn. now is the clock of LastModified and of the rate
// limit; nil is time.Now.
func NewStore(fn Function, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	if !slices.Contains(fn.Versions, "$LATEST") {
		fn.Versions = append([]string{"$LATEST"}, fn.Versions...)
	}
	return &Store{fn: fn, now: now, configs: map[string]Config{}, writing: map[string]bool{},
		limiter: limiter{rate: requestsPerSecond, tokens: requestsPerSecond}}
}

func (s *Store) self() arn.Function {
	return arn.Function{Partition: s.fn.Partition, Region: s.fn.Region, Account: s.fn.Account, Name: s.fn.Name}
}

func (s *Store) arn(qualifier string) string {
	return arn.FunctionARN(s.fn.Partition, s.fn.Region, s.fn.Account, s.fn.Name, qualifier)
}

// Resolve finds the qualifier that a FunctionName and a Qualifier parameter name together:
// $LATEST when neither has one. The function must be this one and the qualifier one that
// exists.
func (s *Store) Resolve(name, qualifier string) (string, *Error) {
	f, err := arn.ParseFunction(name)
	if err != nil {
		return "", invalid("%s", err)
	}
	if err := arn.CheckQualifier(qualifier); err != nil {
		return "", invalid("%s", err)
	}
	if f.Qualifier != "" && qualifier != "" && f.Qualifier != qualifier {
		return "", invalid("The derived qualifier from the function name does not match the specified qualifier.")
	}
	if qualifier == "" {
		qualifier = f.Qualifier
	}
	named := arn.FunctionARN(or(f.Partition, s.fn.Partition), or(f.Region, s.fn.Region), or(f.Account, s.fn.Account), f.Name, qualifier)
	if named != s.arn(qualifier) || qualifier != "" && !slices.Contains(s.fn.Versions, qualifier) {
		return "", notFound("Function not found: %s", named)
	}
	return or(qualifier, "$LATEST"), nil
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// begin marks a write on qualifier as in progress, or answers the conflict.
func (s *Store) begin(qualifier string) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing[qualifier] {
		return &Error{http.StatusConflict, "ResourceConflictException",
			fmt.Sprintf("The EventInvokeConfig for function %s could not be updated due to a concurrent update operation.", s.arn(qualifier))}
	}
	s.writing[qualifier] = true
	return nil
}

func (s *Store) end(qualifier string) {
	s.mu.Lock()
	delete(s.writing, qualifier)
	s.mu.Unlock()
}

func (s *Store) missing(qualifier string) *Error {
	return notFound("The function %s doesn't have an EventInvokeConfig", s.arn(qualifier))
}

// Put replaces the configuration of a resolved qualifier with in, creating it if needed.
func (s *Store) Put(qualifier string, in Input) (Config, *Error) {
	return s.write(qualifier, in, false)
}

// Update merges in into the existing configuration of a resolved qualifier.
func (s *Store) Update(qualifier string, in Input) (Config, *Error) {
	return s.write(qualifier, in, true)
}

func (s *Store) write(qualifier string, in Input, merge bool) (Config, *Error) {
	if err := in.validate(s.self()); err != nil {
		return Config{}, invalid("%s", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.configs[qualifier]
	var c Config
	switch {
	case !merge:
		c = in.put(s.arn(qualifier), s.now())
	case !ok:
		return Config{}, s.missing(qualifier)
	default:
		c = in.update(old, s.now())
	}
	s.configs[qualifier] = c
	return c, nil
}

// Get returns the configuration of a resolved qualifier.
func (s *Store) Get(qualifier string) (Config, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.configs[qualifier]
	if !ok {
		return Config{}, s.missing(qualifier)
	}
	return c, nil
}

// Delete removes the configuration of a resolved qualifier.
func (s *Store) Delete(qualifier string) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.configs[qualifier]; !ok {
		return s.missing(qualifier)
	}
	delete(s.configs, qualifier)
	return nil
}

// List returns every configuration, ordered by qualifier.
func (s *Store) List() []Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := make([]string, 0, len(s.configs))
	for q := range s.configs {
		qs = append(qs, q)
	}
	slices.Sort(qs)
	out := make([]Config, len(qs))
	for i, q := range qs {
		out[i] = s.configs[q]
	}
	return out
}

// Settings are what an asynchronous invocation of a resolved qualifier follows now; an
// empty qualifier is $LATEST.
func (s *Store) Settings(qualifier string) Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.configs[or(qualifier, "$LATEST")].settings()
}

// FunctionARN is the ARN of the function qualified by qualifier, $LATEST when empty.
func (s *Store) FunctionARN(qualifier string) string { return s.arn(or(qualifier, "$LATEST")) }

// Load puts a configuration given as the AWS CLI's input JSON for
// put-function-event-invoke-config: the body's settings, with FunctionName and Qualifier
// optional (this function's $LATEST).
func (s *Store) Load(data []byte) error {
	var in struct {
		FunctionName string
		Qualifier    string
		Input
	}
	if err := decodeInput(data, &in); err != nil {
		return err
	}
	q, err := s.Resolve(or(in.FunctionName, s.fn.Name), in.Qualifier)
	if err != nil {
		return err
	}
	if _, err := s.Put(q, in.Input); err != nil {
		return err
	}
	return nil
}

// requestsPerSecond is Lambda's control-plane rate limit, across its APIs.
const requestsPerSecond = 15

// limiter is a token bucket of requestsPerSecond with a burst of as many.
type limiter struct {
	rate, tokens float64
	last         time.Time
}

// allow takes a token at now, if there is one.
func (l *limiter) allow(now time.Time) bool {
	if !l.last.IsZero() {
		l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

func (s *Store) allow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limiter.allow(s.now())
}
