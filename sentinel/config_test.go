package sentinel

import (
	"errors"
	"testing"

	"github.com/fame-go/fame/config"
)

func TestListenerPortFromEnv(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want int
	}{
		{nil, 8000},
		{map[string]string{"FAME_LISTENER_PORT": "0"}, 0}, // any free port
		{map[string]string{"FAME_LISTENER_PORT": "9123"}, 9123},
	}
	for _, c := range cases {
		get := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
		o, err := LoadOptions("", config.Getenv(get))
		if err != nil || o.Port != c.want {
			t.Errorf("env %v: port %d, %v; want %d", c.env, o.Port, err, c.want)
		}
	}
	get := func(k string) (string, bool) {
		if k == "FAME_LISTENER_PORT" {
			return "70000", true
		}
		return "", false
	}
	if _, err := LoadOptions("", config.Getenv(get)); !errors.Is(err, ErrConfig) {
		t.Errorf("port 70000 accepted: %v", err)
	}
}
