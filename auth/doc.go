// Package auth holds what a reflector needs to trust a sender and what a
// sender needs to be trusted: stateless cookies that prove a sender receives
// at its source address, named shared keys with HMAC-SHA-256 signatures over
// whole datagrams, a freshness window on the sender's clock, and a sliding
// window on sequence numbers against replays.
//
// Keys files are text, one key a line: a name (1 to 16 characters of
// A-Z a-z 0-9 . _ -), white space, and the secret in hex (16 to 64 bytes).
// Blank lines and lines starting with # are ignored. A keys file must not be
// readable by group or others.
//
// The types here keep scratch state to avoid allocating per packet and are
// not safe for concurrent use; a reflector uses them from its receive loop.
package auth
