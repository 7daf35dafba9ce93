package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestConsoleInABrowser drives the console's pages in a real headless
// Chromium, as a person would: sign up, create an organization, create a
// key and copy it, use it over HTTP, see the requests in the usage chart,
// browse the memory it made, edit and reroll the key, delete it, sign out.
// Every page is saved as a screenshot at 375 px wide (a phone) in the
// test's temp folder, or in AZEN_SCREENSHOT_DIR when set.
func TestConsoleInABrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found; install it with: apt-get install -y chromium (or run `make test`, which does)")
	}
	rd := testenv.StartRedis(t)
	sys := startConsoleSystem(t, 1, "sqlite:"+filepath.Join(t.TempDir(), "azen.db"), rd.URL())
	gw := sys.gws[0].URL
	waitForKeySubscribers(t, 1, rd.URL())
	shots := os.Getenv("AZEN_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(browserProfile(t)), chromedp.WindowSize(375, 812))
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	// The confirmations before disable, delete and reroll: accept them.
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(true))
		}
	})
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		var png []byte
		run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}
	run("grant the clipboard", browser.GrantPermissions([]browser.PermissionType{
		browser.PermissionTypeClipboardReadWrite, browser.PermissionTypeClipboardSanitizedWrite}).WithOrigin(gw))

	run("phone width", chromedp.EmulateViewport(375, 812))

	// Without a session, a page shows the sign-in form, not a JSON 401.
	run("open the console", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible("#sign-in", chromedp.ByID))
	shot("01-sign-in")

	run("sign up", chromedp.Click(`a[href="/console/sign-up"]`, chromedp.ByQuery), chromedp.WaitVisible("#sign-up", chromedp.ByID))
	shot("02-sign-up")
	run("fill the sign-up form",
		chromedp.SendKeys("#name", "Ada Lovelace", chromedp.ByID),
		chromedp.SendKeys("#email", "ada@example.com", chromedp.ByID),
		chromedp.SendKeys("#password", "analytical engine", chromedp.ByID),
		chromedp.Click("#sign-up", chromedp.ByID),
		chromedp.WaitVisible("#create-organization", chromedp.ByID))
	shot("03-organizations")

	run("create an organization",
		chromedp.SendKeys("#name", "Analytical", chromedp.ByID),
		chromedp.Click("#create-organization", chromedp.ByID),
		chromedp.WaitVisible("#new-key", chromedp.ByID))
	shot("04-keys-empty")

	run("open the key form", chromedp.Click("#new-key", chromedp.ByID), chromedp.WaitVisible("#create-key", chromedp.ByID))
	run("fill the key form",
		chromedp.SendKeys("#name", "notebook", chromedp.ByID),
		chromedp.SendKeys("#quotaLimit", "1000", chromedp.ByID))
	shot("05-key-new")
	run("create the key", chromedp.Click("#create-key", chromedp.ByID), chromedp.WaitVisible("#copy-key", chromedp.ByID))
	var key string
	run("read the key", chromedp.Value("#new-key-value", &key, chromedp.ByID))
	if !strings.HasPrefix(key, "azen_") {
		t.Fatalf("the page shows %q as the key", key)
	}
	var copied string
	run("copy the key", chromedp.Click("#copy-key", chromedp.ByID),
		chromedp.WaitVisible("[data-copy-status]", chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-copy-status]").textContent`, nil, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Evaluate(`navigator.clipboard.readText()`, &copied, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if copied != key {
		t.Fatalf("the clipboard holds %q, want the key", copied)
	}
	shot("06-key-secret")

	// The key works over plain HTTP, as curl would use it.
	if got := statusWithKey(t, "POST", gw+"/api/v1/memory", key, `{"text":"Ada likes green tea"}`); got != 201 {
		t.Fatalf("create a memory with the new key: %d", got)
	}
	if got := statusWithKey(t, "GET", gw+"/api/v1/memory", key, ""); got != 200 {
		t.Fatalf("list memories with the new key: %d", got)
	}

	run("open the keys", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible(".key", chromedp.ByQuery))
	shot("07-keys")

	// The two calls appear in the chart once the gateway has written them.
	keyID := keyIDOnPage(t, ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		run("open usage", chromedp.Navigate(gw+"/console/usage?keyId="+keyID), chromedp.WaitVisible("#usage-chart", chromedp.ByID))
		if text("#total-requests") == "2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage shows %q requests, want 2", text("#total-requests"))
		}
		time.Sleep(300 * time.Millisecond)
	}
	var bars int
	run("count bars", chromedp.Evaluate(`document.querySelectorAll("#usage-chart rect.ok").length`, &bars))
	if bars != 1 {
		t.Fatalf("%d success bars, want today's", bars)
	}
	shot("08-usage")

	run("browse memories", chromedp.Navigate(gw+"/console/memories"),
		chromedp.WaitVisible("#memory-list li", chromedp.ByQuery))
	if s := text("#memory-list"); !strings.Contains(s, "Ada likes green tea") {
		t.Fatalf("memory list: %q", s)
	}
	// The list of the first page is visible already: wait for the search's
	// own answer before clicking, or the click may hit a replaced node.
	run("search", chromedp.SendKeys("#memory-query", "tea", chromedp.ByID), chromedp.Click(`#memory-search button[type=submit]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#memory-status").textContent.endsWith("matching memories.")`, nil, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.WaitVisible("#memory-list li", chromedp.ByQuery),
		chromedp.Click("#memory-list li button", chromedp.ByQuery), chromedp.WaitVisible("#memory-view", chromedp.ByID))
	if s := text("#memory-content"); s != "Ada likes green tea" {
		t.Fatalf("memory view: %q", s)
	}
	shot("09-memories")
	run("delete the memory", chromedp.Click("#memory-delete", chromedp.ByID),
		chromedp.Poll(`document.querySelector("#memory-status").textContent === "Memory deleted."`, nil, chromedp.WithPollingTimeout(5*time.Second)))
	if got := statusWithKey(t, "GET", gw+"/api/v1/memory", key, ""); got != 200 {
		t.Fatalf("list after delete: %d", got)
	}

	run("edit the key", chromedp.Navigate(gw+"/console/keys"), chromedp.Click(`a[href$="/edit"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#save-key", chromedp.ByID), chromedp.Evaluate(`document.getElementById("name").value = ""`, nil),
		chromedp.SendKeys("#name", "read-only notebook", chromedp.ByID),
		chromedp.Click(`input[name=permissions][value="memory:write"]`, chromedp.ByQuery))
	shot("10-key-edit")
	run("save the key", chromedp.Click("#save-key", chromedp.ByID), chromedp.WaitVisible(".notice", chromedp.ByQuery))
	if name, perms := text(".key-name"), text(".perms"); name != "read-only notebook" || perms != "memory:read" {
		t.Fatalf("after edit: %q %q", name, perms)
	}

	run("reroll the key", chromedp.Click(`a[href$="/reroll"]`, chromedp.ByQuery), chromedp.WaitVisible("#reroll-key", chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("gracePeriod").value = "0"`, nil))
	shot("11-key-reroll")
	run("confirm the reroll", chromedp.Click("#reroll-key", chromedp.ByID), chromedp.WaitVisible("#copy-key", chromedp.ByID))
	var rerolled string
	run("read the new key", chromedp.Value("#new-key-value", &rerolled, chromedp.ByID))
	if rerolled == key || !strings.HasPrefix(rerolled, "azen_") {
		t.Fatalf("rerolled key %q", rerolled)
	}
	within(t, "the old secret after a reroll without grace", time.Second, 403, func() int { return statusWithKey(t, "GET", gw+"/api/v1/memory", key, "") })
	if got := statusWithKey(t, "GET", gw+"/api/v1/memory", rerolled, ""); got != 200 {
		t.Fatalf("the rerolled key: %d", got)
	}

	run("delete the key", chromedp.Navigate(gw+"/console/keys"),
		chromedp.Click(`form[action$="/delete"] button`, chromedp.ByQuery),
		chromedp.WaitVisible(".notice", chromedp.ByQuery))
	shot("12-key-deleted")
	var left int
	run("count keys", chromedp.Evaluate(`document.querySelectorAll(".key").length`, &left))
	if left != 0 {
		t.Fatalf("%d keys left after delete", left)
	}
	within(t, "the deleted key", time.Second, 403, func() int { return statusWithKey(t, "GET", gw+"/api/v1/memory", rerolled, "") })

	run("account page", chromedp.Navigate(gw+"/console/account"), chromedp.WaitVisible("#change-password", chromedp.ByID))
	shot("13-account")
	run("sign out", chromedp.Click("#sign-out", chromedp.ByID), chromedp.WaitVisible("#sign-in", chromedp.ByID))
	if s := text(".notice"); !strings.Contains(s, "signed out") {
		t.Fatalf("after sign-out: %q", s)
	}
	shot("14-signed-out")
	run("the keys page asks to sign in again", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible("#sign-in", chromedp.ByID))

	run("desktop width", chromedp.EmulateViewport(1280, 900))
	run("sign in again", chromedp.SendKeys("#email", "ada@example.com", chromedp.ByID),
		chromedp.SendKeys("#password", "analytical engine", chromedp.ByID), chromedp.Click("#sign-in", chromedp.ByID),
		chromedp.WaitVisible("#new-key", chromedp.ByID))
	run("usage at desktop width", chromedp.Navigate(gw+"/console/usage"), chromedp.WaitVisible("#usage-chart", chromedp.ByID))
	shot("15-usage-desktop")
	t.Logf("screenshots in %s", shots)
}

// browserProfile is a fresh --user-data-dir. Chromium's helper processes
// may still write to it for a moment after the browser is closed, which
// t.TempDir's cleanup reports as a failure; this one waits for them.
func browserProfile(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "azen-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for os.RemoveAll(dir) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// keyIDOnPage is the id of the first key on the keys page.
func keyIDOnPage(t *testing.T, ctx context.Context) string {
	t.Helper()
	var id string
	var ok bool
	if err := chromedp.Run(ctx, chromedp.AttributeValue(".key", "data-key-id", &id, &ok, chromedp.ByQuery)); err != nil || !ok {
		t.Fatalf("no key on the page: %v", err)
	}
	return id
}
