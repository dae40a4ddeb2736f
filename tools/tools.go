//go:build tools

// Package tools pins the linters `make lint` builds. It is its own module so the product's go.mod
// lists only what the product links.
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
