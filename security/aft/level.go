package aft

// Level is the AFT verification level, as in the reference sentinel's
// stickiness.security_level.
type Level string

const (
	// LevelStrict accepts only EdDSA-signed AFTs whose key the sentinel knows.
	LevelStrict Level = "strict"
	// LevelSignedOptional also accepts unsigned (alg "none") AFTs; signed ones
	// must still verify. It is the reference default.
	LevelSignedOptional Level = "signed-optional"
	// LevelSIDOnly ignores AFTs entirely; sessions stick by client sid through
	// the balancer's choice only.
	LevelSIDOnly Level = "sid-only"
)
