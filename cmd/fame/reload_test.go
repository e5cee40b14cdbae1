package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/sentinel"
)

// badFiles are configurations that must be refused, with the problems each must name.
var badFiles = []struct {
	name, file string
	want       []string
}{
	{"every kind of problem at once", `node:
  securityy: {profile: open}
  listeners: [{type: WebSocketListener, host: 127.0.0.1, port: 0}]
  load_balancing: {profile: fastest}
  limits:
    max_route: 3
    max_keys: lots
    send_queue: 1
  stickiness: {default_ttl_sec: 600, max_ttl_sec: 60}
logging: {level: loud}
`, []string{
		`line 2: unknown key node.securityy (did you mean "security"?)`,
		`line 6: unknown key node.limits.max_route (did you mean "max_routes"?)`,
		"cannot unmarshal !!str `lots` into int",
		`load_balancing.profile: "fastest" is not one of`,
		"limits.send_queue 1 is too small",
		"stickiness.max_ttl_sec is below default_ttl_sec",
		`logging.level: "loud" is not one of`,
	}},
	{"not YAML", "node: [\n", []string{"did not find expected"}},
	{"empty (a file caught half written)", "\n", []string{"the file is empty"}},
	{"grants file missing", "node:\n  listeners: [{type: WebSocketListener, host: 127.0.0.1, port: 0}]\n  admission: {profile: direct}\n",
		[]string{"FAME_ADMISSION_GRANTS_FILE"}},
}

// badEnv makes the direct profile's grants file one that does not exist.
var badEnv = config.MapEnv(map[string]string{"FAME_JWT_TRUSTED_ISSUER": "https://issuer.invalid",
	"FAME_ADMISSION_GRANTS_FILE": "/nonexistent/grants"})

// TestValidateListsEveryProblem: `fame validate FILE` lists every problem of a file in one
// error: misspelt keys with their lines, mistyped values, invalid settings, unreadable files
// the configuration names.
func TestValidateListsEveryProblem(t *testing.T) {
	for _, c := range badFiles {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sentinel.yml")
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := validate(&out, []string{path}, badEnv)
			if err == nil {
				t.Fatalf("validated: %s", out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestReloadChecksLikeValidate: a reload refuses exactly what `fame validate` refuses, with the
// same problems (plus the restart-only settings the file would change, which only a reload can
// know), and the sentinel keeps its configuration.
func TestReloadChecksLikeValidate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sentinel.yml")
	good := "node:\n  listeners: [{type: WebSocketListener, host: 127.0.0.1, port: 0}]\n  load_balancing: {profile: hrw}\n"
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	src := configSource{path: path, env: badEnv}
	c, err := src.check()
	if err != nil {
		t.Fatal(err)
	}
	lv := new(slog.LevelVar)
	s, err := sentinel.New(c.opts, sentinel.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), sentinel.WithLogLevel(lv))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	r := &reloader{src: src, s: s, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, bf := range badFiles {
		if err := os.WriteFile(path, []byte(bf.file), 0o600); err != nil {
			t.Fatal(err)
		}
		verr := validate(io.Discard, []string{path}, badEnv)
		rerr := r.reload("test")
		// The same problems; a reload adds the restart-only settings the file would change,
		// which only it can know (it compares with the running configuration).
		if verr == nil || rerr == nil {
			t.Fatalf("%s: validate says %v, reload says %v", bf.name, verr, rerr)
		}
		extra, ok := strings.CutPrefix(rerr.Error(), verr.Error())
		if !ok || (extra != "" && !strings.HasPrefix(extra, "\n  - these settings need a restart: ")) {
			t.Fatalf("%s: validate says\n%v\nreload says\n%v", bf.name, verr, rerr)
		}
	}
	if s.Generation() != 0 {
		t.Fatalf("generation %d after refused reloads", s.Generation())
	}
	// A valid file that changes the listen port: validate passes, reload names the key.
	restart := strings.Replace(good, "port: 0", "port: 9", 1)
	if err := os.WriteFile(path, []byte(restart), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := validate(io.Discard, []string{path}, badEnv); err != nil {
		t.Fatal(err)
	}
	var rr *sentinel.RestartRequiredError
	if err := r.reload("test"); !errors.As(err, &rr) || rr.Keys[0] != "node.listeners[].port" {
		t.Fatalf("port change: %v", err)
	}
	// A port change in a file with an invalid value: both are named.
	if err := os.WriteFile(path, []byte(strings.Replace(restart, "hrw", "fastest", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	err = r.reload("test")
	for _, want := range []string{`load_balancing.profile: "fastest"`, "these settings need a restart: node.listeners[].port"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("invalid file with a port change: %v, want %q", err, want)
		}
	}
	// And a good change applies.
	if err := os.WriteFile(path, []byte(strings.Replace(good, "hrw", "random", 1)+"logging: {level: debug}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.reload("test"); err != nil || s.Generation() != 1 || lv.Level() != slog.LevelDebug {
		t.Fatalf("good reload: %v, generation %d, level %v", err, s.Generation(), lv.Level())
	}
}

// TestDebounce: a burst of file events (an editor's write, rename and chmod) makes one reload,
// once the burst has been quiet for the debounce time; a later event makes another.
func TestDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		in := make(chan struct{})
		out := make(chan struct{}, 1)
		done := make(chan struct{})
		go func() { debounceEvents(ctx, in, 250*time.Millisecond, out); close(done) }()
		fired := func() bool {
			synctest.Wait()
			select {
			case <-out:
				return true
			default:
				return false
			}
		}
		for range 5 {
			in <- struct{}{}
			time.Sleep(100 * time.Millisecond)
			if fired() {
				t.Fatal("reloaded during the burst")
			}
		}
		time.Sleep(150 * time.Millisecond) // 250 ms after the last event
		if !fired() {
			t.Fatal("no reload 250 ms after the burst")
		}
		time.Sleep(time.Second)
		if fired() {
			t.Fatal("a second reload without a new event")
		}
		in <- struct{}{}
		time.Sleep(250 * time.Millisecond)
		if !fired() {
			t.Fatal("no reload after a later event")
		}
		cancel()
		<-done
	})
}

// TestDirWatcherSeesRenameAndSymlinkSwap: the watcher is on the directory, so replacing the file
// by a rename (editors) or swapping a ConfigMap-style ..data symlink is seen, and a file of
// the directory that is not watched is not.
func TestDirWatcherSeesRenameAndSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	// Kubernetes' layout: sentinel.yml -> ..data/sentinel.yml, ..data -> ..v1.
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, v, "sentinel.yml"), []byte("# "+v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(os.Symlink("..data/sentinel.yml", filepath.Join(dir, "sentinel.yml")))
	plain := filepath.Join(dir, "tls.crt")
	must(os.WriteFile(plain, []byte("a"), 0o600))
	w, err := newDirWatcher([]string{filepath.Join(dir, "sentinel.yml"), plain}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(err)
	defer w.close()
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-w.events:
			if !want {
				t.Fatalf("%s: an event", what)
			}
		case <-time.After(2 * time.Second):
			if want {
				t.Fatalf("%s: no event", what)
			}
		}
		for len(w.events) > 0 { // the rest of the burst
			<-w.events
		}
	}
	must(os.WriteFile(filepath.Join(dir, "other.txt"), []byte("x"), 0o600))
	expect("an unrelated file", false)
	// The ConfigMap update: a new ..data symlink renamed over the old one.
	must(os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	expect("..data symlink swap", true)
	// An editor: write a temporary file, rename it over the watched one.
	must(os.WriteFile(plain+".tmp", []byte("b"), 0o600))
	time.Sleep(50 * time.Millisecond)
	for len(w.events) > 0 {
		<-w.events
	}
	must(os.Rename(plain+".tmp", plain))
	expect("rename over the file", true)
	b, err := os.ReadFile(filepath.Join(dir, "sentinel.yml"))
	must(err)
	if string(b) != "# ..v2\n" {
		t.Fatalf("through the symlink: %q", b)
	}
}
