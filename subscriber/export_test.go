package subscriber

// WithConfirmDelay exposes withConfirmDelay to the external tests.
var WithConfirmDelay = withConfirmDelay
