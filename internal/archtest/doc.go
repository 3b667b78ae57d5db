// Package archtest has no code: its test holds the layout's import rules
// (which package may depend on which), so that the shape of the code stays
// what docs and README describe.
package archtest
