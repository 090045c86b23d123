//go:build tools

// Package tools pins the versions of the programs the tests and CI build:
// restic (driven by instance-sync as a subprocess) and staticcheck.
package tools

import (
	_ "github.com/restic/restic/cmd/restic"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
