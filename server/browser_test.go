package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// findChromium returns the path of a Chromium or Chrome binary, or "".
func findChromium() string {
	if p := os.Getenv("SMALLSD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser starts headless Chromium (no sandbox, no GPU, no network of its own, a temporary
// profile) and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium()
	if path == "" {
		t.Skip("Chromium not found (Debian: apt-get install chromium; or set SMALLSD_CHROMIUM): skipping the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// screenshotDir is where screenshots go: $SMALLSD_SCREENSHOTS or the test's temporary folder.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SMALLSD_SCREENSHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// The page in a real browser: fill the prompt, click Generate, watch the progress bar move and
// the image appear; start a second run with Ctrl+Enter and cancel it; desktop and phone widths.
func TestBrowser(t *testing.T) {
	s, ts := newTestServer(t)
	ctx := browser(t)
	dir := screenshotDir(t)

	// Record every step value the progress bar shows.
	const recordSteps = `window.__steps = []; new MutationObserver(() => window.__steps.push(+document.getElementById("bar").dataset.step))
		.observe(document.getElementById("bar"), {attributes: true, attributeFilter: ["data-step"]}); true`
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	set := func(id, v string) chromedp.Action[chromedp.Void] { return chromedp.SetValue(css("#"+id), v) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL),
		chromedp.WaitVisible(css("#prompt")),
	)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("sampler_name").options.length > 0`))
	must(err)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](recordSteps))
	must(err)
	must(chromedp.Do(ctx,
		set("prompt", "a apple, 4k"),
		set("negative_prompt", "blurry"),
		set("steps", "60"),
		set("width", "64"),
		set("height", "64"),
		set("seed", "42"),
		set("sampler_name", "Euler a"),
		chromedp.Click(css("#generate")),
		chromedp.WaitVisible(css("#gallery figure img")),
	))
	width, err := chromedp.Run(ctx, chromedp.Poll[int](`document.querySelector("#gallery figure img").naturalWidth`))
	must(err)
	steps, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`window.__steps`))
	must(err)
	caption, err := chromedp.Run(ctx, chromedp.Text(css("#gallery figcaption pre")))
	must(err)
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(css("#gallery figcaption a"), "href"))
	must(err)
	download, err := chromedp.Run(ctx, chromedp.AttributeValue(css("#gallery figcaption a"), "download"))
	must(err)
	preview, err := chromedp.Run(ctx, chromedp.AttributeValue(css("#preview"), "src"))
	must(err)
	var between int
	for _, v := range steps {
		if v > 0 && v < 60 {
			between++
		}
	}
	t.Logf("progress bar steps seen: %v; image %d px wide; caption %q; download %q", steps, width, caption, download.Value)
	if between == 0 || steps[len(steps)-1] != 1 && steps[len(steps)-1] != 60 {
		t.Errorf("the progress bar did not move through the steps: %v", steps)
	}
	if width != 64 || !strings.Contains(caption, "Seed: 42") || !strings.Contains(caption, "Sampler: Euler a") ||
		!strings.HasPrefix(href.Value, "blob:") || download.Value != "smallsd-42.png" {
		t.Errorf("gallery: width %d, caption %q, link %q download %q", width, caption, href.Value, download.Value)
	}
	if !strings.HasPrefix(preview.Value, "data:image/png;base64,") {
		t.Errorf("no preview image (src %.40q)", preview.Value)
	}
	shoot(t, ctx, filepath.Join(dir, "webui-desktop.png"))

	// A second run, started from the keyboard, cancelled with the button: the server stops it.
	must(chromedp.Do(ctx,
		set("steps", "1000"),
		chromedp.Focus(css("#prompt")),
		chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`+document.getElementById("bar").dataset.step > 0`))
	must(err)
	j := s.q.current()
	if j == nil {
		t.Fatal("no job runs after Ctrl+Enter")
	}
	must(chromedp.Do(ctx, chromedp.Click(css("#cancel"))))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("status").textContent === "Cancelled"`))
	must(err)
	waitFor(t, 5*time.Second, "the cancelled job to stop", func() bool { return s.q.current() == nil })
	st := j.status()
	t.Logf("cancelled in the page at server step %d of %d", st.Step, st.Total)
	if st.Step >= st.Total {
		t.Errorf("the cancelled job ran to the end")
	}

	// A phone: no horizontal scrolling.
	must(chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	must(err)
	if overflow {
		t.Errorf("the page scrolls sideways at 390 px")
	}
	shoot(t, ctx, filepath.Join(dir, "webui-phone.png"))
}

// shoot saves a screenshot of the whole page and logs where.
func shoot(t *testing.T, ctx context.Context, path string) {
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(buf))
}
