// Package envx parses FAME_* setting values: durations in seconds or Go
// syntax, comma lists, booleans (ParseBool, the one boolean spelling) and
// first-of-several names. It reads no environment itself: callers pass the
// lookup (os.Getenv at the edge, a map in tests), so library code stays free
// of environment reads. The admission services and the config package use it.
package envx
