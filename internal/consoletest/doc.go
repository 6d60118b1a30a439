// Package consoletest drives the console (/ui, package httpapi) in headless
// Chromium against a real stack: an embedded NATS server, a worker, pods
// (subscribers) and the admin API on httptest. It holds only tests.
//
// The tests need a chromium binary (Debian's chromium package; or set
// BETASYNC_CHROMIUM). Without one they skip, unless CI is true (CI=true, 1),
// when they fail. Screenshots go to $BETASYNC_ARTIFACTS, or to a temporary directory.
package consoletest
