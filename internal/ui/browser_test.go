package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/messages"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium; without it the test skips, unless
// FUNGI_REQUIRE_BROWSER=1 (CI) makes that a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("FUNGI_REQUIRE_BROWSER") == "1" {
			t.Fatalf("no %s (Debian package chromium) and FUNGI_REQUIRE_BROWSER=1", chromiumPath)
		}
		t.Skipf("no %s (Debian package chromium): skipping the browser test", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless,
		chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// tab opens another tab in the browser of ctx.
func tab(t *testing.T, ctx context.Context) context.Context {
	c, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	return c
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitJS waits until a JavaScript expression is true in the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
		t.Fatalf("waiting for %s: %v\npage: %s", what, err, body)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func stateIs(service, state string) string {
	return fmt.Sprintf(`(document.querySelector('tr[data-service=%q] td.state')||{}).textContent === %q`, service, state)
}

// screenshot saves the page as name.png among the test's artifacts (go
// test -artifacts), or in $FUNGI_UI_SCREENSHOTS when set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("FUNGI_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.ArtifactDir()
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser drives the dashboards of two real nodes in headless
// Chromium: log in through the one-time link, pull the example wasm
// manifest by upload, start it, follow its link, see a log line appear
// live, stop it; then, on a second node, add the first as a device, see it
// online, open its catalog, attach, load the service through the local
// address, and untrust.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	wasm := testutil.BuildWasm(t, "examples/apps/filebrowser-lite")
	manifest := filepath.Join(testutil.RepoRoot(), "examples/service-manifests/filebrowser-lite-wasi.service.yaml")
	const svc = "filebrowser-lite-wasi"
	server, laptop := startNode(t), startNode(t)

	// Log in on the server's dashboard.
	run(t, ctx, "open the login link", chromedp.Navigate(ui.LoginLink(server.token, server.addr, time.Now())))
	waitJS(t, ctx, "the node's peer ID", fmt.Sprintf(`(document.querySelector('#peer-id')||{}).textContent === %q`, server.info.PeerId))
	cookies := eval[string](t, ctx, "read document.cookie", `document.cookie`)
	if strings.Contains(cookies, "fungi_session") {
		t.Fatalf("the session cookie is readable from JavaScript (%q); it must be HttpOnly", cookies)
	}

	// A bad pasted manifest: the error shows by the form, in the daemon's
	// words, the text the CLI prints.
	bad := "apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: Bad_Name}\nspec: {runtime: wasmtime}\n"
	stream, err := server.api.Pull(context.Background(), &messages.PullServiceRequest{ManifestYaml: []byte(bad)})
	if err == nil {
		_, err = stream.Recv()
	}
	cliText := status.Convert(err).Message()
	if cliText == "" {
		t.Fatal("the daemon accepted a manifest with an invalid name")
	}
	run(t, ctx, "pull a bad pasted manifest",
		chromedp.SendKeys(chromedp.CSS("#manifest-text"), bad),
		chromedp.Click(chromedp.CSS("#pull-btn")))
	waitJS(t, ctx, "the daemon's error by the form", fmt.Sprintf(`document.querySelector('#pull-error').textContent === %q`, cliText))
	eval[bool](t, ctx, "clear the pasted manifest", `(() => { document.querySelector('#manifest-text').value = ""; return true; })()`)

	// Pull by upload: the manifest and the wasm its source.file names.
	run(t, ctx, "pull by upload",
		chromedp.SetUploadFiles(chromedp.CSS("#manifest-file"), []string{manifest}),
		chromedp.SetUploadFiles(chromedp.CSS("#artifact-file"), []string{wasm}),
		chromedp.Click(chromedp.CSS("#pull-btn")))
	// A pulled service is registered stopped.
	waitJS(t, ctx, "the pulled service in the table, stopped", stateIs(svc, "stopped"))
	waitJS(t, ctx, "the pull's final progress line", `document.querySelector('#pull-progress').textContent.startsWith("pulled filebrowser-lite-wasi")`)
	screenshot(t, ctx, "services")
	// On a phone's screen the page fits its width, tables included (their
	// rows show as cards).
	phone := tab(t, ctx)
	run(t, phone, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate("http://"+server.addr+"/#/"))
	waitJS(t, phone, "the table on the phone", stateIs(svc, "stopped"))
	if w := eval[string](t, phone, "the page's width", pageWidth); !fitsWidth(w) {
		t.Errorf("on a 390 px wide screen the page is wider than the screen: %s", w)
	}
	screenshot(t, phone, "services-phone")

	// Start it, and follow its link.
	run(t, ctx, "start", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-service=%q] button[data-action=start]`, svc))))
	waitJS(t, ctx, "running", stateIs(svc, "running"))
	href := eval[string](t, ctx, "the port link", fmt.Sprintf(`document.querySelector('tr[data-service=%q] a.port-link').href`, svc))
	if !strings.HasPrefix(href, "http://127.0.0.1:") {
		t.Fatalf("port link %q", href)
	}
	page := tab(t, ctx)
	run(t, page, "follow the service's link", chromedp.Navigate(href))
	body := eval[string](t, page, "the service's page", `document.body.innerText`)
	if !strings.Contains(strings.ToLower(body), "filebrowser") && !strings.Contains(strings.ToLower(body), "file") {
		t.Fatalf("the service's page at %s: %q", href, body)
	}

	// The service page: a log line appears live.
	run(t, ctx, "open the service page", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-service=%q] a.svc-link`, svc))))
	waitJS(t, ctx, "inspect details", `document.querySelector('#svc-inspect') && document.querySelector('#svc-inspect').textContent.includes("wasmtime")`)
	waitJS(t, ctx, "the log pane following", `document.querySelector('#svc-logs') !== null`)
	req, _ := http.NewRequest("PUT", strings.TrimSuffix(href, "/")+"/files/live-note.txt", strings.NewReader("hello"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	waitJS(t, ctx, "the log line live", `document.querySelector('#svc-logs').textContent.includes("stored live-note.txt")`)
	screenshot(t, ctx, "service")

	// Stop it from the page; measure in the browser how long the change
	// takes to show (the click, the daemon's stop, the event).
	eval[bool](t, ctx, "stop", fmt.Sprintf(`(() => {
		const t0 = performance.now();
		window.fungiStopShown = 0; window.fungiFirstChange = 0;
		new MutationObserver((_, obs) => {
			const st = document.querySelector('#svc-state');
			if (st && st.textContent !== "running" && !window.fungiFirstChange) window.fungiFirstChange = performance.now() - t0;
			if (st && st.textContent === "stopped") { window.fungiStopShown = performance.now() - t0; obs.disconnect(); }
		}).observe(document.querySelector('main'), {subtree: true, childList: true, characterData: true});
		document.querySelector('button[data-action=stop][data-name=%q]').click();
		return true;
	})()`, svc))
	waitJS(t, ctx, "stopped on the service page", `window.fungiStopShown > 0`)
	shown := eval[float64](t, ctx, "read the figure", `window.fungiStopShown`)
	first := eval[float64](t, ctx, "read the figure", `window.fungiFirstChange`)
	t.Logf("stop clicked -> first state change shown: %.0f ms; 'stopped' shown: %.0f ms (includes the runtime's stop)", first, shown)
	// A change made elsewhere (the CLI's API) appears in the open page.
	run(t, ctx, "home page", chromedp.Navigate("http://"+server.addr+"/#/"))
	waitJS(t, ctx, "stopped in the table", stateIs(svc, "stopped"))
	eval[bool](t, ctx, "watch", fmt.Sprintf(`(() => { window.fungiSeen = 0; new MutationObserver((_, obs) => {
		if (%s) { window.fungiSeen = Date.now(); obs.disconnect(); } }).observe(document.querySelector('main'), {subtree: true, childList: true, characterData: true}); return true; })()`, stateIs(svc, "running")))
	t0 := time.Now()
	if _, err := server.api.Start(context.Background(), &messages.StartService{Name: svc}); err != nil {
		t.Fatal(err)
	}
	called := time.Now()
	waitJS(t, ctx, "running, started through the API", `window.fungiSeen > 0`)
	seen := eval[float64](t, ctx, "read the figure", `window.fungiSeen`)
	t.Logf("state change -> shown in an open page: %d ms after the start call returned (%d ms after it was sent)",
		int64(seen)-called.UnixMilli(), int64(seen)-t0.UnixMilli())

	// The server lets the laptop in, through its own dashboard.
	run(t, ctx, "devices page", chromedp.Navigate("http://"+server.addr+"/#/devices"))
	run(t, ctx, "add the laptop",
		chromedp.SendKeys(chromedp.CSS("#dev-peer"), laptop.info.PeerId),
		chromedp.SendKeys(chromedp.CSS("#dev-alias"), "laptop"),
		chromedp.Click(chromedp.CSS("#device-add button[type=submit]")))
	row := fmt.Sprintf(`tr[data-peer=%q]`, laptop.info.PeerId)
	waitJS(t, ctx, "the laptop listed", fmt.Sprintf(`document.querySelector('%s') !== null`, row))
	run(t, ctx, "trust the laptop (access)", chromedp.Click(chromedp.CSS(row+` button[data-action=trust]`)))
	waitJS(t, ctx, "the laptop trusted", fmt.Sprintf(`document.querySelector('%s td.role').textContent === "access"`, row))

	// On the laptop's dashboard: add the server, see it online, its catalog.
	lap := tab(t, ctx)
	run(t, lap, "log in on the laptop", chromedp.Navigate(ui.LoginLink(laptop.token, laptop.addr, time.Now())))
	waitJS(t, lap, "the laptop's dashboard", fmt.Sprintf(`(document.querySelector('#peer-id')||{}).textContent === %q`, laptop.info.PeerId))
	run(t, lap, "devices page", chromedp.Navigate("http://"+laptop.addr+"/#/devices"))
	run(t, lap, "add the server",
		chromedp.SendKeys(chromedp.CSS("#dev-peer"), server.info.PeerId),
		chromedp.SendKeys(chromedp.CSS("#dev-alias"), "home-server"),
		chromedp.SendKeys(chromedp.CSS("#dev-addr"), server.info.Addrs[0]),
		chromedp.Click(chromedp.CSS("#device-add button[type=submit]")))
	srow := fmt.Sprintf(`tr[data-peer=%q]`, server.info.PeerId)
	waitJS(t, lap, "the server online", fmt.Sprintf(`(document.querySelector('%s td.online')||{}).textContent === "online"`, srow))
	screenshot(t, lap, "devices")
	run(t, lap, "open its catalog", chromedp.Click(chromedp.CSS(srow+` a.catalog-link`)))
	crow := fmt.Sprintf(`tr[data-service-id=%q]`, svc)
	waitJS(t, lap, "the catalog entry", fmt.Sprintf(`document.querySelector('%s') !== null`, crow))
	screenshot(t, lap, "catalog")
	run(t, lap, "attach", chromedp.Click(chromedp.CSS(crow+` button[data-action=attach]`)))
	run(t, lap, "access page", chromedp.Navigate("http://"+laptop.addr+"/#/access"))
	waitJS(t, lap, "the access entry", fmt.Sprintf(`document.querySelector('#access %s a.access-link') !== null`, crow))
	screenshot(t, lap, "access")
	local := eval[string](t, lap, "the local address", `document.querySelector('#access `+crow+` a.access-link').href`)
	run(t, page, "load the service through the local address", chromedp.Navigate(local))
	body = eval[string](t, page, "the service through the local address", `document.body.innerText`)
	if !strings.Contains(body, "live-note.txt") {
		t.Fatalf("the service through %s does not list the file stored on the server: %q", local, body)
	}
	// And by its name on the laptop's names port: Chromium sends
	// *.localhost to loopback by itself, no resolver asked.
	named := eval[string](t, lap, "the entry's name link", `document.querySelector('#access `+crow+` a.name-link').href`)
	if !strings.HasPrefix(named, "http://"+svc+".") || !strings.Contains(named, ".localhost:") {
		t.Fatalf("name link %q, want http://%s.DEVICE.localhost:PORT/", named, svc)
	}
	run(t, page, "load the service by its name", chromedp.Navigate(named))
	if body = eval[string](t, page, "the service by its name", `document.body.innerText`); !strings.Contains(body, "live-note.txt") {
		t.Fatalf("the service by its name %s does not list the file stored on the server: %q", named, body)
	}
	// The laptop's /metrics counts the connections through the entry.
	req, _ = http.NewRequest("GET", "http://"+laptop.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+laptop.token)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		fmt.Sprintf(`fungi_access_connections_total{peer=%q,service=%q}`, server.info.PeerId, svc),
		fmt.Sprintf(`fungi_access_bytes_total{direction="sent",peer=%q,service=%q}`, server.info.PeerId, svc),
		fmt.Sprintf(`fungi_access_bytes_total{direction="received",peer=%q,service=%q}`, server.info.PeerId, svc),
		`fungi_peer_connections{path="direct"} 1`, `fungi_access_entries 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("the laptop's /metrics lacks %s", want)
		}
	}
	run(t, lap, "connections page", chromedp.Navigate("http://"+laptop.addr+"/#/connections"))
	waitJS(t, lap, "the connection listed", fmt.Sprintf(`document.querySelector('#connections tr[data-peer=%q]') !== null`, server.info.PeerId))
	screenshot(t, lap, "connections")

	// Rename the server on the laptop; detach the entry.
	run(t, lap, "devices page", chromedp.Navigate("http://"+laptop.addr+"/#/devices"))
	waitJS(t, lap, "the server's row", fmt.Sprintf(`document.querySelector('%s input.alias-input') !== null`, srow))
	// Typed as a user does (an input event records the draft), so a
	// live update before the click does not undo it.
	eval[bool](t, lap, "clear the alias", fmt.Sprintf(`(() => { const i = document.querySelector('%s input.alias-input'); i.value = ""; i.focus(); return true; })()`, srow))
	run(t, lap, "type the new alias", chromedp.KeyEvent("nas"))
	run(t, lap, "rename", chromedp.Click(chromedp.CSS(srow+` button[data-action=rename]`)))
	waitJS(t, lap, "the new alias", fmt.Sprintf(`document.querySelector('%s a.catalog-link').textContent === "nas"`, srow))
	run(t, lap, "access page", chromedp.Navigate("http://"+laptop.addr+"/#/access"))
	run(t, lap, "detach", chromedp.Click(chromedp.CSS(`#access `+crow+` button[data-action=detach]`)))
	waitJS(t, lap, "the entry gone", fmt.Sprintf(`document.querySelector('#access %s') === null`, crow))
	if entries, err := laptop.api.ListAccess(context.Background(), &messages.AccessListRequest{}); err != nil || len(entries.Entries) != 0 {
		t.Fatalf("after detach: %v entries, %v", entries, err)
	}
	run(t, lap, "connections page", chromedp.Navigate("http://"+laptop.addr+"/#/connections"))

	// The server untrusts the laptop: its role and its connection go.
	run(t, ctx, "untrust the laptop", chromedp.Click(chromedp.CSS(row+` button[data-action=untrust]`)))
	waitJS(t, ctx, "the laptop with no role here", fmt.Sprintf(`document.querySelector('%s td.role').textContent === "none"`, row))
	waitJS(t, ctx, "the laptop offline", fmt.Sprintf(`document.querySelector('%s td.offline') !== null`, row))
	waitJS(t, lap, "the connection gone from the laptop's page", fmt.Sprintf(`document.querySelector('#connections tr[data-peer=%q]') === null`, server.info.PeerId))
}

// pageWidth is the document's width against the screen's, a table that
// scrolls sideways inside its box counting as that much wider. The screen
// is the layout viewport's width (clientWidth), not innerWidth: a mobile
// browser widens innerWidth to the content and zooms out, so a page too
// wide would always "fit" innerWidth.
const pageWidth = `(() => { const screen = document.documentElement.clientWidth;
	const widest = Math.max(document.documentElement.scrollWidth,
		...[...document.querySelectorAll(".table-wrap")].map(w => screen + w.scrollWidth - w.clientWidth));
	return widest + " <= " + screen; })()`

// fitsWidth reads pageWidth's "SCROLLWIDTH <= SCREENWIDTH" and checks it.
func fitsWidth(s string) bool {
	var scroll, inner int
	fmt.Sscanf(s, "%d <= %d", &scroll, &inner)
	return inner > 0 && scroll <= inner
}
