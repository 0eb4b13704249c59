//go:build linux

// The Firefox half of the phone test: firefox() runs Debian's firefox-esr
// and builds where CI runs it (firefox_test.go).

package ui_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/ui"
)

// TestFirefoxServicePagePhone is the same check in a 390 px wide Firefox
// window.
func TestFirefoxServicePagePhone(t *testing.T) {
	ff := firefox(t)
	n := startNode(t)
	runningService(t, n)
	ff.must(t, "browsingContext.setViewport", map[string]any{"context": ff.context, "viewport": map[string]int{"width": 390, "height": 844}}, nil)
	ff.navigate(t, ui.LoginLink(n.token, n.addr, time.Now()))
	ff.waitJS(t, "the node's peer ID", fmt.Sprintf(`document.querySelector('#peer-id')?.textContent === %q`, n.info.PeerId))
	ff.navigate(t, "http://"+n.addr+"/#/service/"+phoneService)
	ff.waitJS(t, "the service's details", inspected)
	if w := ff.evalString(t, "the page's width", pageWidth); !fitsWidth(w) {
		t.Errorf("in a 390 px wide Firefox window the service page is wider than the window: %s", w)
	}
	for _, c := range servicePageChecks {
		if got := ff.evalString(t, c.what, "String("+c.expr+")"); got != "true" {
			t.Errorf("in a 390 px Firefox window, not %s (%s)", c.what, strings.TrimSpace(got))
		}
	}
	ff.screenshot(t, "firefox-service-phone")
}
