package ui_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fungi-go/fungi/internal/ui"
)

// TestBrowserFirstPaint50 opens the login link of a node with 50 services
// and reports how long the page takes to show the whole services table,
// measured in the browser from the start of the navigation. It reports;
// it asserts only that all 50 rows show.
func TestBrowserFirstPaint50(t *testing.T) {
	ctx := browser(t)
	n := startNode(t)
	for i := range 50 {
		pullWasm(t, n, fmt.Sprintf("svc-%02d", i))
	}
	t0 := time.Now()
	run(t, ctx, "open the login link", chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, ctx, "50 rows", `document.querySelectorAll('#services tbody tr').length === 50 && window.fungiFirstPaint > 0`)
	wall := time.Since(t0)
	paint := eval[float64](t, ctx, "the first paint", `window.fungiFirstPaint`)
	t.Logf("login link -> services table with 50 services: %.0f ms in the browser (navigation start to table); %d ms seen from the test", paint, wall.Milliseconds())
}
