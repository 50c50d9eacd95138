// Package e2e holds end-to-end tests: jobs go through the in-process Zeebe
// gateway, the real worker and pipeline, and the Graph and identity
// simulators, exactly as in production but on loopback.
package e2e
