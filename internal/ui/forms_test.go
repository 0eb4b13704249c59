package ui_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/ui"
)

// TestBrowserExposeAndSettings publishes a web page that already runs
// through the dashboard's expose form, and sets a live key through its
// settings form; each answers with the daemon's words when refused.
func TestBrowserExposeAndSettings(t *testing.T) {
	ctx := browser(t)
	n := startNode(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "a page fungi did not start") }))
	defer page.Close()
	_, port, _ := net.SplitHostPort(page.Listener.Addr().String())

	run(t, ctx, "log in", chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, ctx, "the expose form", `document.querySelector('#expose-btn') !== null`)
	run(t, ctx, "a name the daemon refuses",
		chromedp.SendKeys(chromedp.CSS("#expose-name"), "Not_A_Name"),
		chromedp.SendKeys(chromedp.CSS("#expose-port"), port),
		chromedp.Click(chromedp.CSS("#expose-btn")))
	waitJS(t, ctx, "the refusal", `document.querySelector('#expose-error').textContent !== ""`)
	run(t, ctx, "publish the page",
		chromedp.SetValue(chromedp.CSS("#expose-name"), "page"),
		chromedp.SetValue(chromedp.CSS("#expose-usage"), "web"),
		chromedp.Click(chromedp.CSS("#expose-btn")))
	waitJS(t, ctx, "published", `document.querySelector('#expose-out').textContent === "published page (running)"`)
	waitJS(t, ctx, "its row, running", stateIs("page", "running"))
	href := eval[string](t, ctx, "its port link", `document.querySelector('tr[data-service="page"] a.port-link').href`)
	if href != "http://127.0.0.1:"+port+"/" {
		t.Errorf("the published page's link is %q, want its own port %s", href, port)
	}

	// Settings: a live key saved, and a bad value refused.
	row := `.setting[data-key="mounts.allowed"]`
	waitJS(t, ctx, "the settings", fmt.Sprintf(`document.querySelector('%s input') !== null`, row))
	if eval[bool](t, ctx, "restart-only keys", `document.querySelector('.setting[data-key="ui.listen"]') !== null`) {
		t.Error("the settings form offers ui.listen, which needs a restart")
	}
	dir := t.TempDir()
	run(t, ctx, "a relative folder",
		chromedp.SetValue(chromedp.CSS(row+" input"), "relative/folder"),
		chromedp.Click(chromedp.CSS(row+" button[data-action=save]")))
	waitJS(t, ctx, "the refusal", fmt.Sprintf(`document.querySelector('%s .error').textContent.includes("absolute")`, row))
	run(t, ctx, "allow a folder",
		chromedp.SetValue(chromedp.CSS(row+" input"), dir),
		chromedp.Click(chromedp.CSS(row+" button[data-action=save]")))
	waitJS(t, ctx, "saved", fmt.Sprintf(`document.querySelector('%s span.muted[aria-live]').textContent.startsWith("saved")`, row))
	got, err := config.Get(n.home.ConfigPath(), "mounts.allowed")
	if err != nil || !slices.Equal(got, []string{dir}) {
		t.Errorf("config.yaml mounts.allowed = %q (%v), want [%s]", got, err, dir)
	}
	screenshot(t, ctx, "expose-settings")
}
