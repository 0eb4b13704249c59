package ui_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/messages"
)

// phoneService is a running wasm service with a long name: its page shows
// a 64-character hash, a data folder's path and a port link, the words
// that widened the page before.
const phoneService = "a-service-with-a-long-name-on-a-phone"

func runningService(t *testing.T, n *node) {
	t.Helper()
	pullWasm(t, n, phoneService)
	if _, err := n.api.Start(context.Background(), &messages.StartService{Name: phoneService}); err != nil {
		t.Fatal(err)
	}
}

// servicePageChecks are what the service page must be on a 390 px
// screen, as JavaScript expressions with what each means.
var servicePageChecks = []struct{ what, expr string }{
	{"the nav on one line, every link in sight", `(() => { const nav = document.querySelector("nav"), tops = [...nav.querySelectorAll("a")].map(a => a.getBoundingClientRect().top);
		return tops.every(t => t === tops[0]) && nav.scrollWidth <= nav.clientWidth; })()`},
	// Outside the log, which may well say "running" itself.
	{"running shown once", `[...document.querySelectorAll("main *")].filter(e => !e.closest("pre.logs") && e.childElementCount === 0 && e.textContent.trim() === "running").length === 1`},
	{"the port as a link", `(document.querySelector("#svc-ports a.port-link")||{}).href?.startsWith("http://127.0.0.1:")`},
	{"no live label", `document.querySelector("#live").textContent === ""`},
}

// inspected is true once the service page shows its details.
const inspected = `(document.querySelector('#svc-inspect')||{}).textContent?.includes("Artifact") && document.querySelector("#svc-ports a.port-link") !== null`

// TestBrowserServicePagePhone: in Chromium on a 390 px phone screen the
// service page of a running service has no horizontal scroll (hashes and
// paths wrap), the nav is one line, "running" shows once and the port is
// a link.
func TestBrowserServicePagePhone(t *testing.T) {
	ctx := browser(t)
	n := startNode(t)
	runningService(t, n)
	phone := tab(t, ctx)
	run(t, phone, "log in on a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, phone, "the node's peer ID", fmt.Sprintf(`(document.querySelector('#peer-id')||{}).textContent === %q`, n.info.PeerId))
	run(t, phone, "open the service page", chromedp.Navigate("http://"+n.addr+"/#/service/"+phoneService))
	waitJS(t, phone, "the service's details", inspected)
	if w := eval[string](t, phone, "the page's width", pageWidth); !fitsWidth(w) {
		t.Errorf("on a 390 px wide screen the service page is wider than the screen: %s", w)
	}
	for _, c := range servicePageChecks {
		if !eval[bool](t, phone, c.what, c.expr) {
			t.Errorf("on a 390 px screen, not %s", c.what)
		}
	}
	screenshot(t, phone, "service-phone")
}
