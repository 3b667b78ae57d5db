// Package browsertest drives Debian's headless Chromium for the tests of
// abing's page (chromedp): start it, open a page and wait until it says it
// has drawn, evaluate in it, take screenshots, and collect every error it
// logs or throws.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start starts a headless Chromium (Debian's), or skips the test when
// there is none, unless ABING_REQUIRE_BROWSER=1 (CI) makes that a failure.
// Errors the page logs or throws are collected.
func Start(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("ABING_REQUIRE_BROWSER") == "1" {
			t.Fatal("no chromium on the PATH (apt-get install chromium), and ABING_REQUIRE_BROWSER=1")
		}
		t.Skip("no chromium on the PATH: apt-get install chromium to run the page's tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), errs...) }
}

// Shot saves a screenshot where ABING_ARTIFACTS says (CI keeps them), or in
// the test's temporary folder.
func Shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ABING_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	save(t, ctx, filepath.Join(dir, name))
	t.Logf("screenshot %s", filepath.Join(dir, name))
}

// DocImage saves a screenshot as the documentation's picture at path
// (relative to the test's package: "../docs/images/page-path.png") when
// ABING_DOC_IMAGES=1, which scripts/doc-images sets: the pictures in the
// docs are the tests' own, from the tests' data, and TestDocImagesCurrent
// (package webui) fails when the page changed after them.
func DocImage(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	if os.Getenv("ABING_DOC_IMAGES") == "1" {
		save(t, ctx, path)
		t.Logf("documentation picture %s", path)
	}
}

// save writes a PNG of the whole page to path.
func save(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Open loads url and waits until the page says it has drawn view.
func Open(t *testing.T, ctx context.Context, url, view string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`window.abing && window.abing.ready && window.abing.view === %q`, view),
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("%s: the page did not draw %s: %v", url, view, err)
	}
}

// Eval evaluates expr in the page.
func Eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}
