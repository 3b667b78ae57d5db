package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T000/B000/XXXXSECRET": "https://hooks.slack.com/…",
		"http://admin:s3cret@127.0.0.1:8086":                    "http://127.0.0.1:8086",
		"http://127.0.0.1:8086/":                                "http://127.0.0.1:8086",
		"http://127.0.0.1:9093/api/v2/alerts?token=abc":         "http://127.0.0.1:9093/…",
		"not a url at all":                                      "(redacted URL)",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

// An error from a real HTTP request quotes the URL; the redacted error
// does not, and still unwraps to what caused it.
func TestError(t *testing.T) {
	const secret = "http://user:pw@127.0.0.1:1/hook/SECRETPATH"
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, secret, nil)
	_, err := http.DefaultClient.Do(req)
	if err == nil || !strings.Contains(err.Error(), "SECRETPATH") {
		t.Fatalf("expected the raw error to quote the URL: %v", err)
	}
	wrapped := fmt.Errorf("webhook: %w", err)
	r := Error(wrapped, "pw")
	if strings.Contains(r.Error(), "SECRETPATH") || strings.Contains(r.Error(), "pw@") || !strings.Contains(r.Error(), "127.0.0.1:1") {
		t.Errorf("redacted: %v", r)
	}
	if !errors.Is(r, err) {
		t.Error("the redacted error lost its chain")
	}
	if Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}
