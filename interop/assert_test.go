//go:build interop

package interop

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// The three results every client must print, as "<call> = <value>".
var mathWant = []struct{ call, value string }{
	{"add(3, 4)", "7"},
	{"multiply(6, 7)", "42"},
	{"fib_stream(10)", "0 1 1 2 3 5 8 13 21 34"},
}

// valuesOf returns the values of every stdout line "<call> = <value>", in order.
func valuesOf(lines []string, call string) []string {
	var vals []string
	prefix := call + " = "
	for _, l := range lines {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// checkMath requires each of the three results exactly rounds times with the right value.
func checkMath(t *testing.T, p *proc, rounds int) {
	t.Helper()
	lines := p.lines()
	for _, w := range mathWant {
		vals := valuesOf(lines, w.call)
		if len(vals) != rounds {
			t.Errorf("%s: %d lines %q, want %d", p.name, len(vals), w.call+" = …", rounds)
		}
		for _, v := range vals {
			if v != w.value {
				t.Errorf("%s: %s = %s, want %s", p.name, w.call, v, w.value)
			}
		}
	}
}

// whoamis returns the names from the "whoami = <name>" lines of p, in order.
func whoamis(p *proc) []string { return valuesOf(p.lines(), "whoami") }

// checkWhoami requires n whoami answers, each one of the given replica names, and returns
// how often each name answered.
func checkWhoami(t *testing.T, p *proc, n int, replicas ...string) map[string]int {
	t.Helper()
	names := whoamis(p)
	if len(names) != n {
		t.Errorf("%s: %d whoami answers, want %d", p.name, len(names), n)
	}
	counts := map[string]int{}
	for _, name := range names {
		counts[name]++
	}
	for name := range counts {
		known := false
		for _, r := range replicas {
			known = known || r == name
		}
		if !known {
			t.Errorf("%s: whoami answered %q, not one of %v", p.name, name, replicas)
		}
	}
	return counts
}

// requireLine requires an exact stdout line.
func requireLine(t *testing.T, p *proc, want string) {
	t.Helper()
	for _, l := range p.lines() {
		if strings.TrimSpace(l) == want {
			return
		}
	}
	t.Errorf("%s: no stdout line %q", p.name, want)
}

// countContaining counts lines that contain substr.
func countContaining(lines []string, substr string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func formatCounts(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, counts[k]))
	}
	return strings.Join(parts, " ")
}
