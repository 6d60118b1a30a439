package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests. Every
// goroutine here has an owner that waits for it, and test nats-servers are
// shut down and waited for (WaitForShutdown), so nothing is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
