package ui_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/messages"
)

// devicesPage logs into n's dashboard in a tab of ctx and opens its
// devices page.
func devicesPage(t *testing.T, ctx context.Context, n *node) context.Context {
	t.Helper()
	c := tab(t, ctx)
	run(t, c, "log in", chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, c, "the node's peer ID", fmt.Sprintf(`(document.querySelector('#peer-id')||{}).textContent === %q`, n.info.PeerId))
	run(t, c, "open the devices page", chromedp.Navigate("http://"+n.addr+"/#/devices"))
	waitJS(t, c, "the devices page", `document.querySelector('#invite-btn') !== null && document.documentElement.dataset.events === "on"`)
	return c
}

// TestBrowserPairByInvite pairs two real nodes through their dashboards
// only: the server's page makes an admin invite code, the laptop's page
// joins with it; then each knows the other, with the role the invite
// gave.
func TestBrowserPairByInvite(t *testing.T) {
	ctx := browser(t)
	server, laptop := startNode(t), startNode(t)
	srv := devicesPage(t, ctx, server)
	run(t, srv, "an admin invite for a device called laptop",
		chromedp.SetValue(chromedp.CSS("#invite-role"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#invite-alias"), "laptop"),
		chromedp.Click(chromedp.CSS("#invite-btn")))
	waitJS(t, srv, "the invite code", `(document.querySelector('#invite-code')||{}).textContent?.startsWith("fungi1-")`)
	code := eval[string](t, srv, "the code", `document.querySelector('#invite-code').textContent`)

	lap := devicesPage(t, ctx, laptop)
	run(t, lap, "join with the code",
		chromedp.SendKeys(chromedp.CSS("#join-code"), code),
		chromedp.SendKeys(chromedp.CSS("#join-alias"), "server"),
		chromedp.Click(chromedp.CSS("#join-btn")))
	waitJS(t, lap, "joined", `document.querySelector('#join-out').textContent.startsWith("joined server")`)
	// Each side's list shows the other, updated live.
	waitJS(t, lap, "the server in the laptop's devices", fmt.Sprintf(`(document.querySelector('#devices tr[data-peer=%q] .catalog-link')||{}).textContent === "server"`, server.info.PeerId))
	waitJS(t, srv, "the laptop in the server's devices, admin", fmt.Sprintf(`(document.querySelector('#devices tr[data-peer=%q] td.role')||{}).textContent === "admin"`, laptop.info.PeerId))
	screenshot(t, srv, "pair-invite")
	// The laptop administers the server now: its catalog answers.
	if _, err := remoteCatalog(laptop, server.info.PeerId); err != nil {
		t.Fatalf("the laptop asks the server's catalog after pairing: %v", err)
	}
	// A used code is refused with the daemon's reason, on the page.
	run(t, lap, "join again with the used code",
		chromedp.SendKeys(chromedp.CSS("#join-code"), code),
		chromedp.Click(chromedp.CSS("#join-btn")))
	waitJS(t, lap, "the refusal", `document.querySelector('#join-error').textContent !== ""`)
}

// remoteCatalog asks peer's catalog through n's daemon, as `fungi catalog
// list` does.
func remoteCatalog(n *node, peer string) (*messages.Catalog, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := n.api.Remote(ctx, &messages.RemoteRequest{Device: peer, Request: &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}})
	if err != nil {
		return nil, err
	}
	envs, err := testutil.RecvAll(stream)
	if err != nil {
		return nil, err
	}
	var out *messages.Catalog
	for _, env := range envs {
		if e := env.GetError(); e != nil {
			return nil, errors.New(e.Message)
		}
		if c := env.GetCatalogList(); c != nil {
			out = c
		}
	}
	if out == nil {
		return nil, errors.New("no catalog in the answer")
	}
	return out, nil
}

// TestBrowserAcceptPendingDevice: a stranger that tries to reach the
// server is listed on the server's devices page as wanting to connect;
// Dismiss drops it (it comes back when it tries again), Accept with an
// alias and a role lets it in.
func TestBrowserAcceptPendingDevice(t *testing.T) {
	ctx := browser(t)
	server, phone := startNode(t), startNode(t)
	// knock has the phone try the server's catalog once. Between knocks the
	// phone forgets the server, so that its redials cannot bring the row
	// back while the test looks for it gone; the last knock keeps it.
	knock := func(keep bool) {
		t.Helper()
		if _, err := phone.api.AddDevice(context.Background(), &messages.DeviceAdd{PeerId: server.info.PeerId, Alias: "server", Addrs: server.info.Addrs[:1]}); err != nil {
			t.Fatal(err)
		}
		if _, err := remoteCatalog(phone, server.info.PeerId); err == nil {
			t.Fatal("a stranger reached the server's catalog")
		}
		if keep {
			return
		}
		if _, err := phone.api.RemoveDevice(context.Background(), &messages.DeviceRemove{Device: "server"}); err != nil {
			t.Fatal(err)
		}
	}
	knock(false)
	srv := devicesPage(t, ctx, server)
	row := fmt.Sprintf(`#pending tr[data-peer=%q]`, phone.info.PeerId)
	waitJS(t, srv, "the phone wanting to connect", fmt.Sprintf(`document.querySelector('%s') !== null`, row))
	screenshot(t, srv, "pending-device")

	run(t, srv, "dismiss", chromedp.Click(chromedp.CSS(row+` button[data-action=dismiss]`)))
	waitJS(t, srv, "the row gone", fmt.Sprintf(`document.querySelector('%s') === null`, row))
	testutil.WaitFor(t, 10*time.Second, "the phone off the pending list", func() error {
		p, err := server.api.ListPending(context.Background(), &messages.PendingRequest{})
		if err != nil {
			return err
		}
		for _, d := range p.Devices {
			if d.PeerId == phone.info.PeerId {
				return errors.New("still pending")
			}
		}
		return nil
	})
	knock(true)
	waitJS(t, srv, "the phone back after trying again", fmt.Sprintf(`document.querySelector('%s') !== null`, row))

	// Accept without an alias says what is missing.
	run(t, srv, "accept without an alias", chromedp.Click(chromedp.CSS(row+` button[data-action=accept]`)))
	waitJS(t, srv, "the missing alias", fmt.Sprintf(`document.querySelector('%s .error').textContent.includes("give the device an alias")`, row))
	run(t, srv, "accept as phone, access",
		chromedp.SendKeys(chromedp.CSS(row+` input.pending-alias`), "phone"),
		chromedp.SetValue(chromedp.CSS(row+` select.pending-role`), "access"),
		chromedp.Click(chromedp.CSS(row+` button[data-action=accept]`)))
	waitJS(t, srv, "the phone among the devices, access", fmt.Sprintf(`(document.querySelector('#devices tr[data-peer=%q] td.role')||{}).textContent === "access"`, phone.info.PeerId))
	waitJS(t, srv, "no longer pending", fmt.Sprintf(`document.querySelector('%s') === null`, row))
	devs, err := server.api.ListDevices(context.Background(), &messages.DeviceListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs.Devices {
		if d.PeerId == phone.info.PeerId && (d.Alias != "phone" || d.Role != "access" || len(d.Addrs) == 0 || !strings.HasPrefix(d.Addrs[0], "/ip4/127.0.0.1/")) {
			t.Errorf("accepted device %+v: want alias phone, role access and the address it came from", d)
		}
	}
	testutil.WaitFor(t, 30*time.Second, "the phone reaching the server's catalog", func() error {
		_, err := remoteCatalog(phone, server.info.PeerId)
		return err
	})
}
