package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium (scripts/chromium-install.sh installs it). Outside CI a
// machine without it skips the browser test; in CI (CI set) its absence fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; CI installs it with scripts/chromium-install.sh")
	}
	t.Skip("chromium is not installed (scripts/chromium-install.sh installs it); CI runs this test")
	return ""
}

// statusPool is what the browser reads off the page for one pool.
type browserPool struct {
	Address  string `json:"address"`
	Replicas []struct {
		ID     string `json:"id"`
		Pinned int    `json:"pinned"`
	} `json:"replicas"`
}

// TestStatusPageBrowser drives Debian's chromium through the status page of a real sentinel
// with two math replicas and a client that made sticky calls: the page first shows only the
// login form, a wrong token is refused (403), the admin token typed into the form logs in
// (HttpOnly cookie: the page's own script context cannot read it), and the page then shows
// the math@*.fame.fabric pool with both replicas, the client, and a pinned session. The
// inline style must apply (its CSP hash is right). STATUS_SCREENSHOT=1 (make
// status-screenshot) writes the screenshot to docs/status-page.png.
func TestStatusPageBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	f := newFabric(t, map[string]string{"FAME_ADMIN_TOKEN": statusAdminToken, "FAME_NODE_ID": "sentinel-1"})
	f.startReplica("math-replica-1", "*.fame.fabric", nil, nil)
	f.startReplica("math-replica-2", "*.fame.fabric", nil, nil)
	cfg := f.nodeConfig()
	cfg.SystemID = "math-client"
	client := f.connect(cfg)
	first := whoami(t, client)
	for i := 0; i < 5; i++ {
		if who := whoami(t, client); who != first {
			t.Fatalf("the client's session moved from %s to %s", first, who)
		}
	}
	// One refusal for the screenshot's table: an attach with an invalid origin.
	if resp, _ := statusGet(t, f, "/fame/v1/attach/ws/bogus/intruder", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bogus attach: %d", resp.StatusCode)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 1100))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	page := "http://" + f.addr + "/admin/"

	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(page))
	if err != nil {
		t.Fatalf("navigate: %v", err)
	}
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("first visit: %d, want 401 with the login form", resp.Status)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, `id="token"`) || strings.Contains(html, "math-replica") {
		t.Fatalf("first visit is not the login form alone: %s", html)
	}

	before := refusals(t, f, "admin_token")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), "not-the-admin-token")); err != nil {
		t.Fatal(err)
	}
	if resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("login"))); err != nil {
		t.Fatalf("wrong login: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("message")))
	if resp.Status != http.StatusForbidden || err != nil || !strings.Contains(msg, "admin token invalid") {
		t.Fatalf("wrong token: %d %q %v", resp.Status, msg, err)
	}
	if n := refusals(t, f, "admin_token") - before; n != 1 {
		t.Fatalf("the wrong login moved admin_token refusals by %v, want 1", n)
	}

	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), statusAdminToken)); err != nil {
		t.Fatal(err)
	}
	if resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("login"))); err != nil {
		t.Fatalf("login: %v", err)
	}
	if resp.Status != http.StatusOK || !strings.HasSuffix(resp.URL, "/admin/") {
		t.Fatalf("after login: %d %s", resp.Status, resp.URL)
	}

	// The page refreshes itself every few seconds; each check reads one rendering, so it
	// is retried if a reload came in between.
	var pools []browserPool
	var peers []string
	var cookie, collapse string
	read := func() error {
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("sentinel-id"))); err != nil {
			return err
		}
		if pools, err = chromedp.Run(ctx, chromedp.Evaluate[[]browserPool](`Array.from(document.querySelectorAll('.pool')).map(p => ({
			address: p.querySelector('.pool-address').textContent,
			replicas: Array.from(p.querySelectorAll('tr.replica')).map(r => ({id: r.dataset.replica, pinned: +r.querySelector('.pinned').textContent}))}))`)); err != nil {
			return err
		}
		if peers, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('tr.peer')).map(r => r.dataset.peer)`)); err != nil {
			return err
		}
		if cookie, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil {
			return err
		}
		collapse, err = chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('table')).borderCollapse`))
		return err
	}
	var readErr error
	for i := 0; i < 3; i++ {
		if readErr = read(); readErr == nil {
			break
		}
	}
	if readErr != nil {
		t.Fatalf("reading the page: %v", readErr)
	}
	var pool *browserPool
	for i := range pools {
		if pools[i].Address == "math@*.fame.fabric" {
			pool = &pools[i]
		}
	}
	if pool == nil || len(pool.Replicas) != 2 {
		t.Fatalf("pools on the page: %+v, want math@*.fame.fabric with two replicas", pools)
	}
	pinned := map[string]int{}
	for _, r := range pool.Replicas {
		pinned[r.ID] = r.Pinned
	}
	if _, ok := pinned["math-replica-1"]; !ok || len(pinned) != 2 || pinned["math-replica-2"]+pinned["math-replica-1"] < 1 || pinned[first] < 1 {
		t.Fatalf("replicas on the page: %+v, want both, %s with at least one pinned session", pool.Replicas, first)
	}
	if !strings.Contains(strings.Join(peers, " "), "math-client") {
		t.Fatalf("peers on the page: %v, want math-client", peers)
	}
	if cookie != "" {
		t.Fatalf("the page's script context reads the cookie %q: it must be HttpOnly", cookie)
	}
	if collapse != "collapse" {
		t.Fatalf("table border-collapse %q: the inline style did not apply (CSP hash?)", collapse)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() < 800 || img.Bounds().Dy() < 400 {
		t.Fatalf("screenshot: %v %v", err, img)
	}
	if os.Getenv("STATUS_SCREENSHOT") != "" {
		out := filepath.Join("..", "docs", "status-page.png")
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("wrote %s (%d bytes, %dx%d)\n", out, len(shot), img.Bounds().Dx(), img.Bounds().Dy())
	}
	victimServes(t, f, client)
}
