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
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
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
