package delivery

import (
	"testing"

	"go.uber.org/goleak"
)

// Every hub test ends with its hub closed: any delivery goroutine or connection left behind
// fails the package.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
