package node

import (
	"strings"

	"github.com/fame-go/fame/node/admit"
)

// admitSettingsOf maps FAME_* variables onto admit.Settings as config.AdmitSettings does
// (config imports this package, so these in-package tests cannot use it).
func admitSettingsOf(env map[string]string) *admit.Settings {
	var logicals []string
	for _, l := range strings.Split(env["FAME_REQUESTED_LOGICALS"], ",") {
		if l = strings.TrimSpace(l); l != "" {
			logicals = append(logicals, l)
		}
	}
	return &admit.Settings{Profile: env["FAME_ADMISSION_PROFILE"], URL: env["FAME_DIRECT_ADMISSION_URL"],
		ServiceURL: env["FAME_ADMISSION_SERVICE_URL"], TokenURL: env["FAME_ADMISSION_TOKEN_URL"],
		ClientID: env["FAME_ADMISSION_CLIENT_ID"], ClientSecret: env["FAME_ADMISSION_CLIENT_SECRET"],
		Audience: env["FAME_JWT_AUDIENCE"], CACerts: env["FAME_CA_CERTS"], NodeID: env["FAME_NODE_ID"], Logicals: logicals}
}
