package jsontree

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func upperX(s string) (string, bool) {
	if !strings.Contains(s, "x") {
		return s, false
	}
	return strings.ReplaceAll(s, "x", "X"), true
}

func TestMapStringsCopiesOnlyWhatChanges(t *testing.T) {
	clean := map[string]any{"a": "b", "n": 1.5}
	in := map[string]any{"clean": clean, "l": []any{"ax", true, nil, map[string]any{"k": "x"}}, "kx": "v"}
	out, changed := MapStrings(in, false, upperX)
	require.True(t, changed)
	m := out.(map[string]any)
	require.Equal(t, []any{"aX", true, nil, map[string]any{"k": "X"}}, m["l"])
	require.Equal(t, "v", m["kx"], "keys untouched without keys")
	require.Equal(t, fmt.Sprintf("%p", clean), fmt.Sprintf("%p", m["clean"]), "unchanged parts are shared")
	require.Equal(t, "ax", in["l"].([]any)[0], "input untouched")

	out, _ = MapStrings(in, true, upperX)
	require.Equal(t, "v", out.(map[string]any)["kX"])
	require.NotContains(t, out.(map[string]any), "kx")

	same, changed := MapStrings(clean, true, upperX)
	require.False(t, changed)
	require.Equal(t, fmt.Sprintf("%p", clean), fmt.Sprintf("%p", same))
}
