package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestConsoleBrowserFlows drives the console's remaining flows in a real
// headless Chromium (issue 10 item 6, issue 12 item 5): permission
// checkboxes on create, the memory browser's paging, disable (the
// confirmation dismissed, then accepted) and enable, a reroll with a grace
// period, and the header's organization switcher. Every page it visits,
// at 375 px wide, must not scroll sideways and must label every field,
// and no request may leave the gateway's origin. Screenshots go to the
// test's temp folder, or AZEN_SCREENSHOT_DIR when set.
func TestConsoleBrowserFlows(t *testing.T) {
	rd := testenv.StartRedis(t)
	sys := startConsoleSystem(t, 1, "sqlite:"+filepath.Join(t.TempDir(), "azen.db"), rd.URL())
	gw := sys.gws[0].URL
	waitForKeySubscribers(t, 1, rd.URL())
	b := openConsoleBrowser(t, gw)

	b.run("sign up", chromedp.Navigate(gw+"/console/sign-up"), chromedp.WaitVisible("#sign-up", chromedp.ByID))
	b.checkPage("flows-01-sign-up")
	b.run("fill the sign-up form",
		chromedp.SendKeys("#name", "Grace Hopper", chromedp.ByID),
		chromedp.SendKeys("#email", "grace@example.com", chromedp.ByID),
		chromedp.SendKeys("#password", "compiler pioneer", chromedp.ByID),
		chromedp.Click("#sign-up", chromedp.ByID),
		chromedp.WaitVisible("#create-organization", chromedp.ByID))
	b.checkPage("flows-02-organizations-none")
	b.run("create the first organization", chromedp.SendKeys("#name", "Harvard", chromedp.ByID),
		chromedp.Click("#create-organization", chromedp.ByID), chromedp.WaitVisible("#new-key", chromedp.ByID))
	b.checkPage("flows-03-keys-empty")

	var reader, writer string
	t.Run("permission checkboxes on create", func(t *testing.T) {
		b.run("open the key form", chromedp.Navigate(gw+"/console/keys/new"), chromedp.WaitVisible("#create-key", chromedp.ByID))
		if got := b.checked(); got != "memory:read,memory:write" {
			t.Fatalf("a new key's form checks %q, want the defaults memory:read,memory:write", got)
		}
		b.run("pick permissions", chromedp.SendKeys("#name", "reader", chromedp.ByID),
			chromedp.Click(`input[name=permissions][value="memory:write"]`, chromedp.ByQuery),
			chromedp.Click(`input[name=permissions][value="keys:read"]`, chromedp.ByQuery))
		if got := b.checked(); got != "memory:read,keys:read" {
			t.Fatalf("after the clicks the form checks %q", got)
		}
		b.checkPage("flows-04-key-new-permissions")
		reader = b.createKey()
		b.checkPage("flows-05-key-secret")

		if got := statusWithKey(t, "GET", gw+"/api/v1/memory", reader, ""); got != 200 {
			t.Errorf("memory:read: a read is %d", got)
		}
		wantError(t, newPerson(t).do("POST", gw+"/api/v1/memory", `{"text":"no"}`, "azen-api-key", reader), 403, "API key lacks permission memory:write")
		if got := statusWithKey(t, "GET", gw+"/console/api/keys", reader, ""); got != 200 {
			t.Errorf("keys:read: listing keys is %d", got)
		}
		wantError(t, newPerson(t).do("POST", gw+"/console/api/keys", `{"name":"no"}`, "azen-api-key", reader), 403, "API key lacks permission keys:write")
		b.run("open the keys", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible(".key", chromedp.ByQuery))
		if got := b.text(b.card("reader") + " .perms"); got != "memory:read, keys:read" {
			t.Fatalf("the keys page shows the permissions %q", got)
		}
	})

	t.Run("an error is shown next to its field", func(t *testing.T) {
		b.run("send the form without a name", chromedp.Navigate(gw+"/console/keys/new"), chromedp.WaitVisible("#create-key", chromedp.ByID),
			chromedp.Click("#create-key", chromedp.ByID), chromedp.WaitVisible("#name-error", chromedp.ByID))
		var invalid string
		var ok bool
		b.run("read aria", chromedp.AttributeValue("#name", "aria-describedby", &invalid, &ok, chromedp.ByID))
		if invalid != "name-error" {
			t.Fatalf("the name field is described by %q", invalid)
		}
		b.checkPage("flows-06-key-new-error")
	})

	b.run("create a writer key", chromedp.Navigate(gw+"/console/keys/new"), chromedp.WaitVisible("#create-key", chromedp.ByID),
		chromedp.SendKeys("#name", "writer", chromedp.ByID))
	writer = b.createKey()

	t.Run("the memory browser pages forward and back", func(t *testing.T) {
		const n = 12 // the browser shows 10 a page
		for i := range n {
			if got := statusWithKey(t, "POST", gw+"/api/v1/memory", writer, fmt.Sprintf(`{"text":"note %02d"}`, i)); got != 201 {
				t.Fatalf("memory %d: %d", i, got)
			}
		}
		b.run("browse", chromedp.Navigate(gw+"/console/memories"))
		first := b.memoryPage("Page 1 of 2", 10)
		b.checkPage("flows-07-memories-page-1")
		if b.disabled("#memory-prev") != true || b.disabled("#memory-next") != false {
			t.Fatal("on page 1: Previous should be disabled, Next enabled")
		}
		b.run("next page", chromedp.Click("#memory-next", chromedp.ByID))
		second := b.memoryPage("Page 2 of 2", n-10)
		b.checkPage("flows-08-memories-page-2")
		if b.disabled("#memory-prev") != false || b.disabled("#memory-next") != true {
			t.Fatal("on the last page: Previous should be enabled, Next disabled")
		}
		seen := map[string]bool{}
		for _, s := range append(first, second...) {
			seen[s] = true
		}
		if len(seen) != n {
			t.Fatalf("the two pages show %d distinct memories, want %d: %q %q", len(seen), n, first, second)
		}
		b.run("previous page", chromedp.Click("#memory-prev", chromedp.ByID))
		if again := b.memoryPage("Page 1 of 2", 10); strings.Join(again, "|") != strings.Join(first, "|") {
			t.Fatalf("back on page 1: %q, want %q", again, first)
		}
	})

	t.Run("disable asks first: dismissed changes nothing, accepted disables; enable", func(t *testing.T) {
		b.run("open the keys", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible(".key", chromedp.ByQuery))
		card := b.card("writer")
		disable := card + ` form[action$="/disable"] button`

		b.answer.Store(false)
		before := b.dialogs.Load()
		b.run("disable, then dismiss", chromedp.Click(disable, chromedp.ByQuery))
		b.waitDialogs(before + 1)
		if msg := b.lastDialog(); !strings.HasPrefix(msg, "Disable writer?") {
			t.Fatalf("the confirmation asks %q", msg)
		}
		b.run("reload", chromedp.Reload(), chromedp.WaitVisible(card+" .badge.on", chromedp.ByQuery))
		if got := statusWithKey(t, "GET", gw+"/api/v1/memory", writer, ""); got != 200 {
			t.Fatalf("the key after a dismissed disable: %d", got)
		}

		b.answer.Store(true)
		before = b.dialogs.Load()
		b.run("disable, then accept", chromedp.Click(disable, chromedp.ByQuery), chromedp.WaitVisible(card+" .badge.off", chromedp.ByQuery))
		b.waitDialogs(before + 1)
		if s := b.text(".notice"); !strings.Contains(s, "disabled") {
			t.Fatalf("notice after disable: %q", s)
		}
		b.checkPage("flows-09-key-disabled")
		within(t, "the disabled key", time.Second, 403, func() int { return statusWithKey(t, "GET", gw+"/api/v1/memory", writer, "") })

		before = b.dialogs.Load()
		b.run("enable", chromedp.Click(card+` form[action$="/enable"] button`, chromedp.ByQuery), chromedp.WaitVisible(card+" .badge.on", chromedp.ByQuery))
		if b.dialogs.Load() != before {
			t.Fatal("enabling asked for a confirmation")
		}
		within(t, "the enabled key", time.Second, 200, func() int { return statusWithKey(t, "GET", gw+"/api/v1/memory", writer, "") })
	})

	t.Run("reroll with a grace period: both secrets work", func(t *testing.T) {
		b.answer.Store(true)
		b.run("open the reroll form", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible(".key", chromedp.ByQuery),
			chromedp.Click(b.card("writer")+` a[href$="/reroll"]`, chromedp.ByQuery), chromedp.WaitVisible("#reroll-key", chromedp.ByID),
			chromedp.SetValue("#gracePeriod", "300", chromedp.ByID))
		b.checkPage("flows-10-key-reroll")
		before := b.dialogs.Load()
		b.run("reroll", chromedp.Click("#reroll-key", chromedp.ByID), chromedp.WaitVisible("#copy-key", chromedp.ByID))
		b.waitDialogs(before + 1) // the reroll asked first
		var fresh string
		b.run("read the new key", chromedp.Value("#new-key-value", &fresh, chromedp.ByID))
		if fresh == writer || !strings.HasPrefix(fresh, "azen_") {
			t.Fatalf("rerolled key %q", fresh)
		}
		if s := b.text("main"); !strings.Contains(s, "The old secret works until") {
			t.Fatalf("the answer does not say how long the old secret works: %q", s)
		}
		b.checkPage("flows-11-key-rerolled")
		// The change is announced at once; a second is what it may take.
		time.Sleep(time.Second)
		for what, secret := range map[string]string{"old": writer, "new": fresh} {
			if got := statusWithKey(t, "GET", gw+"/api/v1/memory", secret, ""); got != 200 {
				t.Errorf("the %s secret during the grace period: %d", what, got)
			}
		}
		b.run("open the keys", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible(".key", chromedp.ByQuery))
		if s := b.text(b.card("writer") + " .facts"); !strings.Contains(s, "Old secret") {
			t.Fatalf("the keys page does not show the grace period: %q", s)
		}
		b.checkPage("flows-12-keys-grace")
		writer = fresh
	})

	t.Run("the organization switcher shows the other organization's keys", func(t *testing.T) {
		b.run("create a second organization", chromedp.Navigate(gw+"/console/organizations"), chromedp.WaitVisible("#create-organization", chromedp.ByID),
			chromedp.SendKeys("#name", "Navy", chromedp.ByID), chromedp.Click("#create-organization", chromedp.ByID),
			chromedp.WaitVisible(".notice", chromedp.ByQuery))
		b.checkPage("flows-13-organizations-two")
		b.run("open the keys", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible(".key", chromedp.ByQuery))
		if n := b.count(".key"); n != 2 {
			t.Fatalf("the first organization shows %d keys, want 2", n)
		}
		var navy string
		b.run("find the option", chromedp.Evaluate(`[...document.querySelectorAll("#org-switch option")].find(o => o.textContent.startsWith("Navy")).value`, &navy))
		// Choosing in the header's select sends its form (console.js);
		// SetValue fires the change event a person's choice would.
		b.run("switch in the header", chromedp.SetValue("#org-switch", navy, chromedp.ByID),
			chromedp.WaitVisible(".notice", chromedp.ByQuery), chromedp.WaitVisible("#new-key", chromedp.ByID))
		if h := b.text("h1"); !strings.Contains(h, "Navy") {
			t.Fatalf("after the switch the keys page is titled %q", h)
		}
		if n := b.count(".key"); n != 0 {
			t.Fatalf("the second organization shows %d keys, want none", n)
		}
		b.checkPage("flows-14-keys-second-org")
		b.run("the memories of the second organization", chromedp.Navigate(gw+"/console/memories"),
			chromedp.Poll(`document.querySelector("#memory-status").textContent === "No memories yet."`, nil, chromedp.WithPollingTimeout(10*time.Second)))

		b.run("switch back on the organizations page", chromedp.Navigate(gw+"/console/organizations"),
			chromedp.Click(`//button[normalize-space()="Switch to Harvard"]`, chromedp.BySearch), chromedp.WaitVisible(".key", chromedp.ByQuery))
		if h := b.text("h1"); !strings.Contains(h, "Harvard") {
			t.Fatalf("after switching back the keys page is titled %q", h)
		}
		if n := b.count(".key"); n != 2 {
			t.Fatalf("back in the first organization: %d keys, want 2", n)
		}
	})

	t.Run("every page at 375 px", func(t *testing.T) {
		b.run("open the keys", chromedp.Navigate(gw+"/console/keys"), chromedp.WaitVisible(".key", chromedp.ByQuery))
		id := keyIDOnPage(t, b.ctx)
		for _, p := range []struct{ name, path, ready string }{
			{"flows-15-keys", "/console/keys", ".key"},
			{"flows-16-key-new", "/console/keys/new", "#create-key"},
			{"flows-17-key-edit", "/console/keys/" + id + "/edit", "#save-key"},
			{"flows-18-key-reroll", "/console/keys/" + id + "/reroll", "#reroll-key"},
			{"flows-19-usage", "/console/usage", "#usage-chart"},
			{"flows-20-usage-key", "/console/usage?keyId=" + id + "&days=90", "#usage-chart"},
			{"flows-21-memories", "/console/memories", "#memory-list li"},
			{"flows-22-organizations", "/console/organizations", "#create-organization"},
			{"flows-23-account", "/console/account", "#change-password"},
		} {
			b.run("open "+p.path, chromedp.Navigate(gw+p.path), chromedp.WaitVisible(p.ready, chromedp.ByQuery))
			b.checkPage(p.name)
		}
		b.run("open the add-memory form", chromedp.Navigate(gw+"/console/memories"), chromedp.WaitVisible("#memory-list li", chromedp.ByQuery),
			chromedp.Click("details.add summary", chromedp.ByQuery), chromedp.WaitVisible("#memory-text", chromedp.ByID),
			chromedp.Click("#memory-list li button", chromedp.ByQuery), chromedp.WaitVisible("#memory-view", chromedp.ByID))
		b.checkPage("flows-24-memory-view")
		b.run("sign out", chromedp.Navigate(gw+"/console/account"), chromedp.WaitVisible("#sign-out", chromedp.ByID),
			chromedp.Click("#sign-out", chromedp.ByID), chromedp.WaitVisible("#sign-in", chromedp.ByID))
		b.checkPage("flows-25-signed-out")
	})

	b.noForeignRequests()
	t.Logf("screenshots in %s", b.shots)
}

// consoleBrowser is a headless Chromium at 375 px on one gateway. It
// answers every confirm() with answer, and records each request that
// leaves the gateway's origin.
type consoleBrowser struct {
	t      *testing.T
	ctx    context.Context
	origin string
	shots  string
	answer atomic.Bool

	dialogs atomic.Int32
	mu      sync.Mutex
	asked   string   // the last dialog's message
	seen    int      // requests made
	foreign []string // requests to anywhere but origin
}

func openConsoleBrowser(t *testing.T, origin string) *consoleBrowser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found; install it with: apt-get install -y chromium (or run `make test`, which does)")
	}
	b := &consoleBrowser{t: t, origin: origin, shots: os.Getenv("AZEN_SCREENSHOT_DIR")}
	if b.shots == "" {
		b.shots = t.TempDir()
	}
	b.answer.Store(true)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(browserProfile(t)), chromedp.WindowSize(375, 812))
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel)
	b.ctx = ctx
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.mu.Lock()
			b.asked = ev.Message
			b.mu.Unlock()
			accept := b.answer.Load()
			go func() {
				_ = chromedp.Run(ctx, page.HandleJavaScriptDialog(accept))
				b.dialogs.Add(1)
			}()
		case *network.EventRequestWillBeSent:
			b.mu.Lock()
			b.seen++
			// data: URLs carry their content and go nowhere (Chromium's own
			// date picker icon is one).
			if u := ev.Request.URL; u != origin && !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") {
				b.foreign = append(b.foreign, u)
			}
			b.mu.Unlock()
		}
	})
	b.run("phone width", chromedp.EmulateViewport(375, 812))
	return b
}

func (b *consoleBrowser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *consoleBrowser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

func (b *consoleBrowser) count(sel string) int {
	b.t.Helper()
	var n int
	b.run("count "+sel, chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n))
	return n
}

func (b *consoleBrowser) disabled(sel string) bool {
	b.t.Helper()
	var d bool
	b.run("read "+sel, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).disabled`, sel), &d))
	return d
}

// card is a selector for the key card named name on the keys page.
func (b *consoleBrowser) card(name string) string {
	b.t.Helper()
	var id string
	b.run("find the key "+name, chromedp.Evaluate(fmt.Sprintf(
		`([...document.querySelectorAll(".key")].find(k => k.querySelector(".key-name").textContent.trim() === %q) || {dataset: {}}).dataset.keyId || ""`, name), &id))
	if id == "" {
		b.t.Fatalf("no key named %q on the page", name)
	}
	return fmt.Sprintf(`li[data-key-id=%q]`, id)
}

// checked lists the key form's checked permissions, in page order.
func (b *consoleBrowser) checked() string {
	b.t.Helper()
	var s string
	b.run("read the permissions", chromedp.Evaluate(`[...document.querySelectorAll("input[name=permissions]:checked")].map(c => c.value).join(",")`, &s))
	return s
}

// createKey sends the key form and returns the key shown once.
func (b *consoleBrowser) createKey() string {
	b.t.Helper()
	var key string
	b.run("create the key", chromedp.Click("#create-key", chromedp.ByID), chromedp.WaitVisible("#copy-key", chromedp.ByID),
		chromedp.Value("#new-key-value", &key, chromedp.ByID))
	if !strings.HasPrefix(key, "azen_") {
		b.t.Fatalf("the page shows %q as the key", key)
	}
	return key
}

// memoryPage waits until the memory browser shows label with n memories
// and returns their texts.
func (b *consoleBrowser) memoryPage(label string, n int) []string {
	b.t.Helper()
	b.run("wait for "+label, chromedp.Poll(fmt.Sprintf(
		`document.querySelector("#memory-page").textContent === %q && document.querySelectorAll("#memory-list li").length === %d`, label, n),
		nil, chromedp.WithPollingTimeout(10*time.Second)))
	var texts []string
	b.run("read the memories", chromedp.Evaluate(`[...document.querySelectorAll("#memory-list .memory-text")].map(p => p.textContent)`, &texts))
	return texts
}

func (b *consoleBrowser) waitDialogs(n int32) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.dialogs.Load() < n {
		if time.Now().After(deadline) {
			b.t.Fatalf("%d confirmations answered, want %d", b.dialogs.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *consoleBrowser) lastDialog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.asked
}

// checkPage saves a screenshot of the page and checks it at 375 px: no
// sideways scrolling, and a label for every field.
func (b *consoleBrowser) checkPage(name string) {
	b.t.Helper()
	var png []byte
	b.run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	var width, viewport int
	b.run("measure "+name, chromedp.Evaluate(`document.documentElement.scrollWidth`, &width),
		chromedp.Evaluate(`window.innerWidth`, &viewport))
	if viewport != 375 || width > 375 {
		b.t.Errorf("%s: %d px wide in a %d px viewport, want at most 375 in 375", name, width, viewport)
	}
	// Every field a person can reach (hidden inputs aside, but also those
	// in a closed <details>) has a label with text, or an aria label.
	var unlabelled []string
	b.run("labels of "+name, chromedp.Evaluate(`[...document.querySelectorAll("input, select, textarea")]
		.filter(el => el.type !== "hidden")
		.filter(el => !([...(el.labels || [])].some(l => l.textContent.trim() !== "") ||
			(el.getAttribute("aria-label") || "").trim() !== "" ||
			(el.getAttribute("aria-labelledby") || "").split(" ").some(id => id && document.getElementById(id))))
		.map(el => el.outerHTML.slice(0, 120))`, &unlabelled))
	if len(unlabelled) > 0 {
		b.t.Errorf("%s: fields without a label: %q", name, unlabelled)
	}
}

// noForeignRequests checks that every request the pages made went to the
// gateway's origin (no CDN, no font service, no analytics).
func (b *consoleBrowser) noForeignRequests() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == 0 {
		b.t.Fatal("no request was seen: the network listener is not working")
	}
	if len(b.foreign) > 0 {
		b.t.Errorf("%d of %d requests left %s: %q", len(b.foreign), b.seen, b.origin, b.foreign)
		return
	}
	b.t.Logf("%d requests, all to %s", b.seen, b.origin)
}
