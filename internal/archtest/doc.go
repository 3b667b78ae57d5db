// Package archtest has no code: its tests hold the layout's import rules
// (which package may depend on which), so that the shape of the code stays
// what docs and README describe, and that the docs stand on their own (no
// link or file name that leads outside the repository).
package archtest
