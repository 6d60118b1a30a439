package betasync

// TrimSpace exposes trimSpace to the external tests.
var TrimSpace = trimSpace
