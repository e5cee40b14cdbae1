package sentinel

import "github.com/fame-go/fame/config"

// admissionFromEnv reads the admission settings the way LoadOptions does (through package
// config), from a map-backed getenv: tests name the settings by their variables.
func admissionFromEnv(get func(string) string) AdmissionOptions {
	var o Options
	o.applyEnv(config.SentinelFromEnv(func(k string) (string, bool) { v := get(k); return v, v != "" }))
	return o.Admission
}
