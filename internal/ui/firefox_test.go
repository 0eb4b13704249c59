//go:build linux

// The Firefox test runs Debian's firefox-esr in a process group of its own
// (Setpgid), so it builds where CI runs it: Linux.

package ui_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/messages"
)

// firefoxPath is Debian's firefox-esr.
const firefoxPath = "/usr/bin/firefox-esr"

// bidi is the least of a WebDriver BiDi client that the test needs: one
// websocket, commands matched to their replies by id, events dropped.
type bidi struct {
	conn    *websocket.Conn
	writeMu sync.Mutex
	mu      sync.Mutex
	next    int
	pending map[int]chan bidiReply
	closed  chan struct{}
	err     error // why the reader stopped; read after closed
	context string
}

type bidiReply struct {
	Type    string          `json:"type"`
	ID      *int            `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// firefox starts headless Firefox ESR on a profile of its own and opens a
// BiDi session on its top-level browsing context. Without firefox-esr the
// test skips, unless FUNGI_REQUIRE_BROWSER=1 (CI) makes that a failure.
func firefox(t *testing.T) *bidi {
	t.Helper()
	if _, err := exec.LookPath(firefoxPath); err != nil {
		if os.Getenv("FUNGI_REQUIRE_BROWSER") == "1" {
			t.Fatalf("no %s (Debian package firefox-esr) and FUNGI_REQUIRE_BROWSER=1", firefoxPath)
		}
		t.Skipf("no %s (Debian package firefox-esr): skipping the Firefox test", firefoxPath)
	}
	profile := t.TempDir()
	// Nothing at start-up that would reach out or ask a question: no first
	// run pages, no default-browser check, no reports.
	prefs := `user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("browser.aboutwelcome.enabled", false);
`
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	// Port 0: Firefox picks a free port and writes it into the profile.
	cmd := exec.Command(firefoxPath, "--headless", "--no-remote", "--remote-debugging-port=0", "--profile", profile)
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1")
	// Its content processes are its children: the group goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.Create(filepath.Join(t.TempDir(), "firefox.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", firefoxPath, err)
	}
	// The exit is awaited without reaping (WNOWAIT): until the cleanup's
	// group kill, the leader's zombie keeps its PID, and with it the
	// group's number, from going to another process. PIDs wrap at 32768
	// on CI's machines, and a kill of a group number given again could
	// SIGKILL a parallel test's processes (a container's shim).
	exited := make(chan struct{})
	go func() {
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
		close(exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		cmd.Wait()
		log.Close()
	})
	var server struct {
		Host string `json:"ws_host"`
		Port int    `json:"ws_port"`
	}
	if err := testutil.Poll(60*time.Second, func() error {
		select {
		case <-exited:
			out, _ := os.ReadFile(log.Name())
			return fmt.Errorf("firefox exited: %s", out)
		default:
		}
		data, err := os.ReadFile(filepath.Join(profile, "WebDriverBiDiServer.json"))
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &server)
	}); err != nil {
		t.Fatalf("waiting for Firefox's BiDi port: %v", err)
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := dialer.Dial(fmt.Sprintf("ws://%s:%d/session", server.Host, server.Port), nil)
	if err != nil {
		t.Fatalf("BiDi websocket: %v", err)
	}
	// Replies are a few kilobytes; a screenshot is the largest.
	conn.SetReadLimit(64 << 20)
	b := &bidi{conn: conn, pending: map[int]chan bidiReply{}, closed: make(chan struct{})}
	go b.read()
	t.Cleanup(func() { conn.Close(); <-b.closed })

	var session struct {
		Capabilities struct {
			BrowserName    string `json:"browserName"`
			BrowserVersion string `json:"browserVersion"`
		} `json:"capabilities"`
	}
	b.must(t, "session.new", map[string]any{"capabilities": map[string]any{}}, &session)
	t.Logf("driving %s %s over WebDriver BiDi", session.Capabilities.BrowserName, session.Capabilities.BrowserVersion)
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	b.must(t, "browsingContext.getTree", map[string]any{"maxDepth": 0}, &tree)
	if len(tree.Contexts) == 0 {
		b.must(t, "browsingContext.create", map[string]any{"type": "tab"}, &tree.Contexts)
	}
	if len(tree.Contexts) == 0 {
		t.Fatal("Firefox has no browsing context")
	}
	b.context = tree.Contexts[0].Context
	b.must(t, "browsingContext.setViewport", map[string]any{"context": b.context, "viewport": map[string]int{"width": 1280, "height": 1000}}, nil)
	return b
}

func (b *bidi) read() {
	defer close(b.closed)
	for {
		var r bidiReply
		if err := b.conn.ReadJSON(&r); err != nil {
			b.err = err
			return
		}
		if r.ID == nil {
			continue // an event
		}
		b.mu.Lock()
		ch := b.pending[*r.ID]
		delete(b.pending, *r.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// call sends one command and waits for its reply, within 60 s.
func (b *bidi) call(method string, params, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := make(chan bidiReply, 1)
	b.mu.Lock()
	b.next++
	id := b.next
	b.pending[id] = ch
	b.mu.Unlock()
	b.writeMu.Lock()
	b.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := b.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	b.writeMu.Unlock()
	if err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.Type == "error" {
			return fmt.Errorf("%s: %s: %s", method, r.Error, r.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(r.Result, result)
	case <-b.closed:
		return fmt.Errorf("%s: the connection closed: %v", method, b.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: no reply: %w", method, ctx.Err())
	}
}

func (b *bidi) must(t *testing.T, method string, params, result any) {
	t.Helper()
	if err := b.call(method, params, result); err != nil {
		t.Fatal(err)
	}
}

// remoteValue is a BiDi serialized value: a primitive's value, or a
// node's shared id.
type remoteValue struct {
	Type     string          `json:"type"`
	Value    json.RawMessage `json:"value"`
	SharedID string          `json:"sharedId"`
}

// eval evaluates an expression in the page (awaiting a promise) and
// returns its value.
func (b *bidi) eval(expr string) (remoteValue, error) {
	var r struct {
		Type             string      `json:"type"`
		Result           remoteValue `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := b.call("script.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "target": map[string]string{"context": b.context},
	}, &r)
	if err != nil {
		return remoteValue{}, err
	}
	if r.Type == "exception" {
		return remoteValue{}, errors.New(r.ExceptionDetails.Text)
	}
	return r.Result, nil
}

func (b *bidi) evalString(t *testing.T, what, expr string) string {
	t.Helper()
	v, err := b.eval(expr)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		t.Fatalf("%s: %s is not a string", what, v.Value)
	}
	return s
}

// waitJS waits, in the page, until expr is true, at most 30 s: the page
// checks it on every frame and resolves when it holds.
func (b *bidi) waitJS(t *testing.T, what, expr string) {
	t.Helper()
	v, err := b.eval(`new Promise(resolve => {
		const deadline = performance.now() + 30000;
		const check = () => {
			let ok = false;
			try { ok = !!(` + expr + `); } catch (e) {}
			if (ok) resolve(true);
			else if (performance.now() > deadline) resolve(false);
			else setTimeout(check, 16);
		};
		check();
	})`)
	if err != nil || string(v.Value) != "true" {
		body, _ := b.eval(`document.querySelector('main') ? document.querySelector('main').innerText : document.documentElement.outerHTML`)
		t.Fatalf("waiting for %s in Firefox: %v %s\npage: %s", what, err, v.Value, body.Value)
	}
}

// click clicks the element with a real pointer: moved onto it, pressed and
// released, as a user's mouse does.
func (b *bidi) click(t *testing.T, what, selector string) {
	t.Helper()
	v, err := b.eval(fmt.Sprintf(`document.querySelector(%q)`, selector))
	if err != nil || v.SharedID == "" {
		t.Fatalf("%s: no element %s (%v)", what, selector, err)
	}
	b.must(t, "input.performActions", map[string]any{"context": b.context, "actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]string{"pointerType": "mouse"},
		"actions": []any{
			map[string]any{"type": "pointerMove", "x": 0, "y": 0, "origin": map[string]any{"type": "element", "element": map[string]string{"sharedId": v.SharedID}}},
			map[string]any{"type": "pointerDown", "button": 0},
			map[string]any{"type": "pointerUp", "button": 0},
		},
	}}}, nil)
}

func (b *bidi) navigate(t *testing.T, url string) {
	t.Helper()
	b.must(t, "browsingContext.navigate", map[string]any{"context": b.context, "url": url, "wait": "complete"}, nil)
}

func (b *bidi) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("FUNGI_UI_SCREENSHOTS")
	if dir == "" {
		dir = t.ArtifactDir()
	}
	var r struct {
		Data string `json:"data"`
	}
	b.must(t, "browsingContext.captureScreenshot", map[string]any{"context": b.context, "origin": "document"}, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFirefox runs the dashboard in headless Firefox ESR with its default
// settings: the login link, the services table, a start clicked with the
// pointer, and state changes arriving live over server-sent events (the
// table re-renders only from the event stream, so "running" showing means
// the events arrived).
func TestFirefox(t *testing.T) {
	ff := firefox(t)
	n := startNode(t)
	const svc = "ff-files"
	pullWasm(t, n, svc)

	ff.navigate(t, ui.LoginLink(n.token, n.addr, time.Now()))
	ff.waitJS(t, "the node's peer ID", fmt.Sprintf(`document.querySelector('#peer-id').textContent === %q`, n.info.PeerId))
	if c := ff.evalString(t, "document.cookie", `document.cookie`); c != "" {
		t.Errorf("the session cookie is readable from JavaScript in Firefox: %q", c)
	}
	ff.waitJS(t, "the service in the table", stateIs(svc, "stopped"))

	ff.click(t, "start", fmt.Sprintf(`tr[data-service=%q] button[data-action=start]`, svc))
	ff.waitJS(t, "running, from the event stream", stateIs(svc, "running"))
	ff.waitJS(t, "the port's link", fmt.Sprintf(`document.querySelector('tr[data-service=%q] a.port-link').href.startsWith("http://127.0.0.1:")`, svc))
	ff.screenshot(t, "firefox-services")

	// A pasted manifest pulled from the form: the progress is read from
	// the streamed response, and the new row arrives over the events.
	ff.evalString(t, "paste a manifest", `(document.querySelector('#manifest-text').value =
		"apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: pasted}\nspec:\n  runtime: external\n  source: {host: 127.0.0.1}\n  ports: [{name: web, servicePort: 9, protocol: tcp}]\n")`)
	ff.click(t, "Pull", `#pull-btn`)
	ff.waitJS(t, "the pull's final progress line", `document.querySelector('#pull-progress').textContent === "pulled pasted (stopped)"`)
	ff.waitJS(t, "the pulled service's row", stateIs("pasted", "stopped"))

	// A change made elsewhere, through the CLI's API, shows in the page.
	if _, err := n.api.Stop(context.Background(), &messages.StopService{Name: svc}); err != nil {
		t.Fatal(err)
	}
	ff.waitJS(t, "stopped, stopped through the API", stateIs(svc, "stopped"))

	// The routes and the service page's live log stream work too.
	ff.click(t, "the Devices link", `nav a[href="#/devices"]`)
	ff.waitJS(t, "the devices page", `document.querySelector('h1').textContent === "Devices" && document.querySelector('#dev-peer') !== null`)
	ff.click(t, "the Node & services link", `nav a[href="#/"]`)
	// The click's hashchange draws the page after the click returns.
	ff.waitJS(t, "the home page", stateIs(svc, "stopped"))
	ff.click(t, "the service's page", fmt.Sprintf(`tr[data-service=%q] a.svc-link`, svc))
	ff.waitJS(t, "inspect details", `document.querySelector('#svc-inspect').textContent.includes("wasmtime")`)

	// A phone-sized window: the table's rows show as cards, nothing
	// scrolls sideways.
	ff.must(t, "browsingContext.setViewport", map[string]any{"context": ff.context, "viewport": map[string]int{"width": 390, "height": 844}}, nil)
	ff.click(t, "the Node & services link", `nav a[href="#/"]`)
	ff.waitJS(t, "the table", stateIs(svc, "stopped"))
	if w := ff.evalString(t, "the page's width", pageWidth); !fitsWidth(w) {
		t.Errorf("in a 390 px wide Firefox window the page is wider than the window: %s", w)
	}
	ff.screenshot(t, "firefox-services-phone")
}
