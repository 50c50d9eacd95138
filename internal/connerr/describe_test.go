package connerr

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDescribe(t *testing.T) {
	require.Equal(t, `string "ten"`, Describe("ten"))
	require.Equal(t, `string "quote\"d"`, Describe(`quote"d`))
	require.Equal(t, "null", Describe(nil))
	require.Equal(t, "a list", Describe([]any{1}))
	// A long value is never shown in part: a secret cut short would no
	// longer be recognised by the redactor.
	long := "LONG-" + strings.Repeat("Z9", 40)
	require.Equal(t, "a string of 85 characters", Describe(long))
	require.Equal(t, "a string of 61 characters", Quote(strings.Repeat("ü", 61), 64))
	require.Equal(t, `"ok"`, Quote("ok", 64))
}
