package graph

import (
	"math/rand/v2"
	"testing"

	khttp "github.com/microsoft/kiota-http-go"
)

func TestCompressionOutsideRetry(t *testing.T) {
	base := []khttp.Middleware{
		khttp.NewRetryHandler(), khttp.NewRedirectHandler(), khttp.NewCompressionHandler(),
		khttp.NewUserAgentHandler(), khttp.NewParametersNameDecodingHandler(),
	}
	for i := range 50 {
		mw := append([]khttp.Middleware(nil), base...)
		rand.Shuffle(len(mw), func(a, b int) { mw[a], mw[b] = mw[b], mw[a] })
		out := compressionOutsideRetry(mw)
		var ci, ri int
		for j, m := range out {
			switch m.(type) {
			case *khttp.CompressionHandler:
				ci = j
			case *khttp.RetryHandler:
				ri = j
			}
		}
		if len(out) != len(base) || ci > ri {
			t.Fatalf("shuffle %d: compression at %d, retry at %d of %d", i, ci, ri, len(out))
		}
	}
}
