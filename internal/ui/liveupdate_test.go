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

// TestLiveUpdateKeepsRows: a live update about one row leaves the other
// rows' elements in place, so a click or the typing under way on them is
// not lost (a row re-drawn between a click's lookup and its press was
// TestConfirmRemove's flake, and a user's lost click). The services table
// keeps its rows when the first event arrives and when another service
// comes; the devices table keeps a row, its half-typed alias and the focus
// when another device comes; the row that did change shows the change.
func TestLiveUpdateKeepsRows(t *testing.T) {
	ctx := browser(t)
	n := startNode(t)
	pullWasm(t, n, "first")
	run(t, ctx, "open the login link", chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, ctx, "the service", stateIs("first", "stopped"))
	// The table drawn from the page's first fetch; the event stream's first
	// snapshot of the same list follows (or has come already).
	eval[bool](t, ctx, "mark the row", `(() => { window.fungiRow = document.querySelector('tr[data-service="first"]');
		window.fungiButton = window.fungiRow.querySelector('button[data-action=remove]'); return true; })()`)
	waitJS(t, ctx, "the event stream", `document.documentElement.dataset.events === "on"`)
	pullWasm(t, n, "second")
	waitJS(t, ctx, "the second service, live", stateIs("second", "stopped"))
	if !eval[bool](t, ctx, "the first row", `document.querySelector('tr[data-service="first"]') === window.fungiRow &&
		window.fungiRow.querySelector('button[data-action=remove]') === window.fungiButton && window.fungiButton.isConnected`) {
		t.Fatal("a live update about another service re-drew the first service's row")
	}
	if _, err := n.api.Start(context.Background(), &messages.StartService{Name: "first"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the first service running", stateIs("first", "running"))
	if !eval[bool](t, ctx, "its row", `document.querySelector('tr[data-service="first"]') === window.fungiRow &&
		window.fungiRow.querySelector('button[data-action=stop]') !== null`) {
		t.Fatal("the started service's row is not the same element showing its Stop button")
	}

	dev, other := randomPeer(t), randomPeer(t)
	if _, err := n.api.AddDevice(context.Background(), &messages.DeviceAdd{PeerId: dev, Alias: "phone"}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "devices page", chromedp.Navigate("http://"+n.addr+"/#/devices"))
	row := fmt.Sprintf(`tr[data-peer=%q]`, dev)
	waitJS(t, ctx, "the device", fmt.Sprintf(`document.querySelector('%s input.alias-input') !== null`, row))
	eval[bool](t, ctx, "mark the row", fmt.Sprintf(`(() => { window.fungiRow = document.querySelector('%s');
		const i = window.fungiRow.querySelector('input.alias-input'); i.value = ""; i.focus(); return true; })()`, row))
	run(t, ctx, "type a new alias", chromedp.KeyEvent("new-pho"))
	if _, err := n.api.AddDevice(context.Background(), &messages.DeviceAdd{PeerId: other, Alias: "tv"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the other device, live", fmt.Sprintf(`document.querySelector('tr[data-peer=%q]') !== null`, other))
	kept := eval[string](t, ctx, "the first device's row", fmt.Sprintf(`(() => { const r = document.querySelector('%s'), i = r.querySelector('input.alias-input');
		return (r === window.fungiRow) + " " + (document.activeElement === i) + " " + i.value; })()`, row))
	if kept != "true true new-pho" {
		t.Fatalf("after a live update about another device, the first device's row (same element, focus on its alias field, its text): %s; want true true new-pho", kept)
	}
	run(t, ctx, "finish typing", chromedp.KeyEvent("ne"))
	run(t, ctx, "rename", chromedp.Click(chromedp.CSS(row+` button[data-action=rename]`)))
	waitJS(t, ctx, "the new alias", fmt.Sprintf(`document.querySelector('%s a.catalog-link').textContent === "new-phone"`, row))
}
