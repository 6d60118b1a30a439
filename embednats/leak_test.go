package embednats_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives its tests. Every
// server the tests start is shut down and waited for (WaitForShutdown),
// and nats-server's goroutines end by then, so nothing is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
