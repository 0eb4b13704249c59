package ui_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/messages"
)

// focused describes the element that has the keyboard's focus.
type focused struct {
	Match bool   `json:"match"` // it is the element looked for
	Ring  bool   `json:"ring"`  // it matches :focus-visible and draws an outline
	Desc  string `json:"desc"`
}

// focusOn reads the focused element; sel is the CSS selector looked for.
func focusOn(t *testing.T, ctx context.Context, sel string) focused {
	t.Helper()
	return eval[focused](t, ctx, "the focused element", fmt.Sprintf(`(() => {
		const a = document.activeElement;
		if (!a || a === document.body || a === document.documentElement) return {match: false, ring: true, desc: "body"};
		const s = getComputedStyle(a);
		return {match: a.matches(%q), ring: a.matches(":focus-visible") && s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2,
			desc: a.tagName.toLowerCase() + (a.id ? "#" + a.id : "") + " " + (a.getAttribute("href") || a.dataset.action || "") + " " + (a.textContent || "").trim().slice(0, 30)};
	})()`, sel))
}

// tabTo presses Tab, and only Tab, until the element sel has the focus, at
// most 80 times; every element the focus passes on the way must show a
// focus ring.
func tabTo(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	var path []string
	for range 80 {
		run(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
		f := focusOn(t, ctx, sel)
		path = append(path, f.Desc)
		if !f.Ring {
			t.Errorf("the focus on %s is not visible (no :focus-visible outline)", f.Desc)
		}
		if f.Match {
			return
		}
	}
	t.Fatalf("Tab does not reach %s (%s); the focus went through %q", what, sel, path)
}

func press(t *testing.T, ctx context.Context, what, keys string) {
	t.Helper()
	run(t, ctx, what, chromedp.KeyEvent(keys))
}

// randomPeer is the peer ID of a key made for the test: a device that
// exists only in the address book.
func randomPeer(t *testing.T) string {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestKeyboard uses the dashboard with the keyboard only: Tab to move,
// Enter and Space to act. It follows the nav links, adds a device through
// the form, copies the peer ID, starts and stops a service from its row
// and opens its page; every focused element shows a focus ring, and the
// focus stays on the row's button when a live update redraws the table.
func TestKeyboard(t *testing.T) {
	ctx := browser(t)
	n := startNode(t)
	const svc = "kb-files"
	pullWasm(t, n, svc)
	origin := "http://" + n.addr
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: origin,
		}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	run(t, ctx, "open the login link", chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, ctx, "the services table", stateIs(svc, "stopped"))
	if !eval[bool](t, ctx, "the focus style", `[...document.styleSheets].some(s => [...s.cssRules].some(r =>
		r.selectorText && r.selectorText.includes("button:focus-visible") && r.style.outlineStyle !== "none"))`) {
		t.Error("app.css has no :focus-visible outline for buttons")
	}

	// The nav links.
	tabTo(t, ctx, "the Devices link", `nav a[href="#/devices"]`)
	press(t, ctx, "Enter on Devices", kb.Enter)
	waitJS(t, ctx, "the devices page", `location.hash === "#/devices" && document.querySelector("h1").textContent === "Devices"`)

	// Add a device: type into the form, Enter submits it.
	dev := randomPeer(t)
	tabTo(t, ctx, "the peer ID field", `#dev-peer`)
	press(t, ctx, "type the peer ID", dev)
	tabTo(t, ctx, "the alias field", `#dev-alias`)
	press(t, ctx, "type the alias", "tablet")
	press(t, ctx, "Enter submits", kb.Enter)
	row := fmt.Sprintf(`tr[data-peer=%q]`, dev)
	waitJS(t, ctx, "the device listed", fmt.Sprintf(`(document.querySelector('%s a.catalog-link')||{}).textContent === "tablet"`, row))

	// Choose a role with the arrow keys; a live update redraws the table
	// meanwhile (another device added elsewhere), and both the focus and
	// the choice stay; Trust sends it.
	tabTo(t, ctx, "the device's role", row+` select.role-select`)
	press(t, ctx, "ArrowDown to admin", kb.ArrowDown)
	waitJS(t, ctx, "admin chosen", fmt.Sprintf(`document.querySelector('%s select.role-select').value === "admin"`, row))
	other := randomPeer(t)
	if _, err := n.api.AddDevice(context.Background(), &messages.DeviceAdd{PeerId: other, Alias: "tv"}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the other device listed", fmt.Sprintf(`document.querySelector('tr[data-peer=%q]') !== null`, other))
	if f := focusOn(t, ctx, row+` select.role-select`); !f.Match {
		t.Fatalf("after the devices table's live update the focus is on %s, want the role's select", f.Desc)
	}
	tabTo(t, ctx, "the device's Trust button", row+` button[data-action=trust]`)
	press(t, ctx, "Enter on Trust", kb.Enter)
	waitJS(t, ctx, "trusted as admin", fmt.Sprintf(`document.querySelector('%s td.role').textContent === "admin"`, row))

	tabTo(t, ctx, "the Node & services link", `nav a[href="#/"]`)
	press(t, ctx, "Enter on Node & services", kb.Enter)
	waitJS(t, ctx, "the home page", `location.hash === "#/" && document.querySelector("#copy-peer-id") !== null`)

	// Copy the peer ID.
	tabTo(t, ctx, "the Copy button", `#copy-peer-id`)
	press(t, ctx, "Enter on Copy", kb.Enter)
	waitJS(t, ctx, "copied", `document.querySelector('#copy-peer-id').nextElementSibling.textContent === "copied"`)
	clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil || clip != n.info.PeerId {
		t.Errorf("the clipboard holds %q (%v), want the peer ID", clip, err)
	}

	// Start with Enter; the live update redraws the row and the focus
	// stays on its button, now Stop, which Space presses.
	startBtn := fmt.Sprintf(`tr[data-service=%q] button[data-action=start]`, svc)
	stopBtn := fmt.Sprintf(`tr[data-service=%q] button[data-action=stop]`, svc)
	tabTo(t, ctx, "the service's Start button", startBtn)
	press(t, ctx, "Enter on Start", kb.Enter)
	waitJS(t, ctx, "running", stateIs(svc, "running"))
	if f := focusOn(t, ctx, stopBtn); !f.Match || !f.Ring {
		t.Fatalf("after the table's live update the focus is on %s (visible: %v), want the row's Stop button", f.Desc, f.Ring)
	}
	press(t, ctx, "Space on Stop", " ")
	waitJS(t, ctx, "stopped", stateIs(svc, "stopped"))
	if f := focusOn(t, ctx, startBtn); !f.Match {
		t.Fatalf("after the stop the focus is on %s, want the row's Start button", f.Desc)
	}

	// The service's page, by its link in the row.
	tabTo(t, ctx, "the service's link", fmt.Sprintf(`tr[data-service=%q] a.svc-link`, svc))
	press(t, ctx, "Enter on the service's link", kb.Enter)
	waitJS(t, ctx, "the service page", `document.querySelector('#svc-inspect') !== null && document.querySelector('#svc-inspect').textContent.includes("wasmtime")`)
	tabTo(t, ctx, "the page's Start button", `#main button[data-action=start]`)
	press(t, ctx, "Enter on Start", kb.Enter)
	waitJS(t, ctx, "running on the service page", `(document.querySelector('#svc-state')||{}).textContent === "running"`)
	if f := focusOn(t, ctx, `#main button[data-action=stop]`); !f.Match {
		t.Fatalf("after the service page's update the focus is on %s, want its Stop button", f.Desc)
	}
}

// dialogs answers the page's confirm() dialogs: each one that opens takes
// the next answer from the test and reports its message once it is closed.
type dialogs struct {
	answer chan bool
	closed chan string
}

func answerDialogs(t *testing.T, ctx context.Context) *dialogs {
	d := &dialogs{answer: make(chan bool, 1), closed: make(chan string, 1)}
	opening := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range opening {
			if err != nil {
				return
			}
			var accept bool
			select {
			case accept = <-d.answer:
			case <-time.After(30 * time.Second):
				accept = false
			}
			// The reply goes from a goroutine other than the one that
			// receives the events, as chromedp asks.
			go func() {
				_, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
				if err != nil && ctx.Err() == nil {
					t.Errorf("answering the dialog: %v", err)
				}
				d.closed <- ev.Message
			}()
		}
	}()
	return d
}

// click clicks sel after queueing the answer to the confirm() it opens,
// and returns the dialog's message once it is answered.
func (d *dialogs) click(t *testing.T, ctx context.Context, sel string, accept bool) string {
	t.Helper()
	d.answer <- accept
	run(t, ctx, "click "+sel, chromedp.Click(chromedp.CSS(sel)))
	select {
	case m := <-d.closed:
		return m
	case <-time.After(30 * time.Second):
		t.Fatalf("no confirm() dialog after clicking %s", sel)
		return ""
	}
}

// TestConfirmRemove: the Remove buttons ask first; dismissing the question
// keeps the service or the device and sends nothing, accepting removes it.
// The devices page, as the services table, fits a phone's screen.
func TestConfirmRemove(t *testing.T) {
	ctx := browser(t)
	n := startNode(t)
	const svc = "keep-me"
	pullWasm(t, n, svc)
	dev := randomPeer(t)
	if _, err := n.api.AddDevice(context.Background(), &messages.DeviceAdd{PeerId: dev, Alias: "old-phone"}); err != nil {
		t.Fatal(err)
	}
	d := answerDialogs(t, ctx)
	run(t, ctx, "open the login link", chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, ctx, "the service", stateIs(svc, "stopped"))
	// Every POST the page sends is recorded: confirm() returns before the
	// click's handler would send one, so after the dialog closes an empty
	// record means nothing was sent.
	recordPosts := `(() => { window.fungiPosts = []; if (window.fungiFetch) return true;
		const f = window.fungiFetch = window.fetch;
		window.fetch = (u, o) => { if (o && o.method === "POST") window.fungiPosts.push(String(u)); return f(u, o); }; return true; })()`
	eval[bool](t, ctx, "record the POSTs", recordPosts)

	removeSvc := fmt.Sprintf(`tr[data-service=%q] button[data-action=remove]`, svc)
	if m := d.click(t, ctx, removeSvc, false); m != "Remove keep-me? Its data folder is kept." {
		t.Errorf("the dialog asked %q", m)
	}
	if posts := eval[[]string](t, ctx, "the POSTs", `window.fungiPosts`); len(posts) != 0 {
		t.Fatalf("the dismissed Remove sent %q", posts)
	}
	if list, err := n.api.List(context.Background(), &messages.ListServicesRequest{}); err != nil || len(list.Services) != 1 {
		t.Fatalf("after the dismissed Remove the daemon lists %v (%v), want the service", list, err)
	}
	if !eval[bool](t, ctx, "the row", fmt.Sprintf(`document.querySelector('tr[data-service=%q]') !== null`, svc)) {
		t.Fatal("after the dismissed Remove the row is gone")
	}
	d.click(t, ctx, removeSvc, true)
	waitJS(t, ctx, "the row gone", fmt.Sprintf(`document.querySelector('tr[data-service=%q]') === null`, svc))
	if list, err := n.api.List(context.Background(), &messages.ListServicesRequest{}); err != nil || len(list.Services) != 0 {
		t.Fatalf("after the accepted Remove the daemon lists %v (%v)", list, err)
	}

	// The devices page on a phone's screen: no sideways scrolling of the
	// page itself.
	phone := tab(t, ctx)
	run(t, phone, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate("http://"+n.addr+"/#/devices"))
	waitJS(t, phone, "the device on the phone", fmt.Sprintf(`document.querySelector('tr[data-peer=%q]') !== null`, dev))
	if w := eval[string](t, phone, "the page's width", pageWidth); !fitsWidth(w) {
		t.Errorf("on a 390 px wide screen the devices page is wider than the screen: %s", w)
	}
	screenshot(t, phone, "devices-phone")

	run(t, ctx, "devices page", chromedp.Navigate("http://"+n.addr+"/#/devices"))
	row := fmt.Sprintf(`tr[data-peer=%q]`, dev)
	waitJS(t, ctx, "the device", fmt.Sprintf(`document.querySelector('%s') !== null`, row))
	eval[bool](t, ctx, "record the POSTs", recordPosts)
	if m := d.click(t, ctx, row+` button[data-action=remove]`, false); m != "Remove old-phone?" {
		t.Errorf("the dialog asked %q", m)
	}
	if posts := eval[[]string](t, ctx, "the POSTs", `window.fungiPosts`); len(posts) != 0 {
		t.Fatalf("the dismissed Remove sent %q", posts)
	}
	if list, err := n.api.ListDevices(context.Background(), &messages.DeviceListRequest{}); err != nil || len(list.Devices) != 1 {
		t.Fatalf("after the dismissed Remove the daemon lists %v (%v), want the device", list, err)
	}
	d.click(t, ctx, row+` button[data-action=remove]`, true)
	waitJS(t, ctx, "the device gone", fmt.Sprintf(`document.querySelector('%s') === null`, row))
	if list, err := n.api.ListDevices(context.Background(), &messages.DeviceListRequest{}); err != nil || len(list.Devices) != 0 {
		t.Fatalf("after the accepted Remove the daemon lists %v (%v)", list, err)
	}
}
