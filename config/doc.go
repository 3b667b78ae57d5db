// Package config owns the configuration file of abing monitor and abing
// mesh agent (monitor.yaml, and the same with an agent section): its typed
// sections, the one Duration they are written in, and every default, in
// one table (defaults.go) that fills a configuration before the file is
// decoded over it. A key the file leaves out keeps its default; a key it
// gives keeps its value, zero included, and is checked as given: a zero
// that is not allowed is an error, never a default. Complete checks a
// configuration and derives what follows from the rest (target names,
// paths, the node's name, the spool beside the database).
//
// The example files in deploy/ show every key with its default; this
// package's tests hold them to the code.
package config
