package p2p

// WriteTimeoutFor exposes writeTimeout to the external tests.
var WriteTimeoutFor = writeTimeout
