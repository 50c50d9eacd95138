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
