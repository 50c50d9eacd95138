package redact

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStringMasksLongestFirstAndSkipsShortValues(t *testing.T) {
	var s Set
	require.Equal(t, "nothing known", s.String("nothing known"))
	s.Add("abc", "token-1234", "token-1234-extended", "")
	require.Equal(t, "a *** and ***; abc stays", s.String("a token-1234-extended and token-1234; abc stays"))
	require.True(t, s.Contains("token-1234"))
	require.False(t, s.Contains("abc"), "shorter than MinLength")
	var nilSet *Set
	require.Equal(t, "x", nilSet.String("x"))
	nilSet.Add("ignored")
}

func TestValueMasksCopiesOnlyWhatChangesAndLeavesTheInput(t *testing.T) {
	var s Set
	s.Add("s3cr3t")
	clean := map[string]any{"a": "plain", "n": 1}
	in := map[string]any{
		"clean":     clean,
		"list":      []any{"x", "has s3cr3t inside", map[string]any{"k": "s3cr3t"}},
		"s3cr3tkey": "v",
	}
	out := s.Value(in).(map[string]any)

	require.Equal(t, []any{"x", "has *** inside", map[string]any{"k": "***"}}, out["list"])
	require.Equal(t, "v", out["***key"])
	require.NotContains(t, out, "s3cr3tkey")
	// The input is untouched …
	require.Equal(t, "has s3cr3t inside", in["list"].([]any)[1])
	require.Equal(t, "v", in["s3cr3tkey"])
	// … and what had no secret is shared, not copied.
	require.Equal(t, fmt.Sprintf("%p", clean), fmt.Sprintf("%p", out["clean"]))
	same := map[string]any{"a": []any{"b"}}
	require.Equal(t, fmt.Sprintf("%p", same), fmt.Sprintf("%p", s.Value(same)))
}

func TestLeastRecentlyUsedValuesLeaveWhenTheSetIsFull(t *testing.T) {
	var s Set
	s.Add("client-secret-in-use")
	for i := 0; i < 3*maxValues; i++ {
		s.Add(fmt.Sprintf("token-%06d", i))
		if i%1000 == 0 {
			s.Add("client-secret-in-use") // every job re-adds the secrets it uses
		}
	}
	require.LessOrEqual(t, len(s.values), maxValues)
	require.False(t, s.Contains("token-000000"), "old and unused")
	require.True(t, s.Contains("client-secret-in-use"), "still in use")
	last := fmt.Sprintf("token-%06d", 3*maxValues-1)
	require.Equal(t, "*** and ***", s.String(last+" and client-secret-in-use"))
}

func TestConcurrentAddAndMask(t *testing.T) {
	var s Set
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				v := fmt.Sprintf("secret-%d-%d", g, i)
				s.Add(v)
				if got := s.String("x " + v + " y"); got != "x *** y" {
					t.Errorf("%q", got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Input errors quote values, Graph repeats request URLs percent-encoded, and
// logs show encoded URLs: each spelling of a secret is masked.
func TestEncodedSpellingsAreMasked(t *testing.T) {
	var s Set
	s.Add(`Pro"ject S3C\RET@x/y+z'`, "a<b&c>d-S3CRET")
	for _, spelled := range []string{
		`Pro"ject S3C\RET@x/y+z'`,               // as is
		`Pro\"ject S3C\\RET@x/y+z'`,             // %q and JSON
		`Pro%22ject%20S3C%5CRET@x%2Fy+z%27`,     // url.PathEscape
		`Pro%22ject+S3C%5CRET%40x%2Fy%2Bz%27`,   // url.QueryEscape
		`Pro%22ject%20S3C%5CRET%40x%2Fy%2Bz%27`, // a query with %20 for spaces
		`Pro%22ject%20S3C%5CRET@x/y%2Bz'`,       // the Graph client's OData query encoding
		`Pro%22ject%20S3C%5cRET%40x%2fy%2bz%27`, // lower-case hex
		`a\u003cb\u0026c\u003ed-S3CRET`,         // encoding/json's HTML-safe escaping
	} {
		require.Equal(t, "<***>", s.String("<"+spelled+">"), spelled)
	}
	require.Equal(t, "S3C", s.String("S3C"), "a part alone is not the secret")

	// Plain token characters have one spelling only, and cost no more.
	require.Empty(t, otherForms("tok-EN_1.2~x"))
}
