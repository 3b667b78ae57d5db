// Package redact keeps secrets out of log lines: URLs lose what may carry
// a credential (user and password, path, query), and errors that quote a
// URL (net/http's *url.Error) quote the redacted one.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// URL returns raw with its user information, query and fragment dropped and
// its path replaced by "/…": webhook URLs carry their token in the path
// (Slack, Teams, many others), InfluxDB URLs may carry user:password. What
// is left tells a reader which server is meant. A string that does not
// parse as a URL is replaced whole.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(redacted URL)"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		out += "/…"
	}
	return out
}

// Error returns err with every URL it quotes through net/http's
// *url.Error redacted, and every occurrence of the secrets given (a token,
// a raw URL) replaced. It returns nil for nil.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		msg = strings.ReplaceAll(msg, ue.URL, URL(ue.URL))
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "(redacted)")
		}
	}
	return &redacted{msg: msg, err: err}
}

// redacted keeps the error chain for errors.Is and errors.As, and prints
// only the redacted text.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
