// Package names is a golden test input: parameter names that would clash
// with the generated code's, unnamed parameters, and imported types,
// two of whose packages have one name.
package names

import (
	"context"
	htmltemplate "html/template"
	"text/template"
	"time"

	"github.com/goxpc/xpc"
)

// Clash has parameters named like the generated code's own variables and
// imports.
type Clash interface {
	Odd(ctx context.Context, req string, err int, time time.Duration, c bool, p0 int) (time.Time, error)
	Unnamed(context.Context, string, int) error
	Templates(ctx context.Context, h htmltemplate.HTML, t *template.Template) error
	Any(ctx context.Context, v any, m map[string]any) ([]any, error)
	File(ctx context.Context, f *xpc.FD) (*xpc.Endpoint, error)
	Embedded
}

// Embedded is embedded in Clash.
type Embedded interface {
	Inner(ctx context.Context, Clash string) error
}
