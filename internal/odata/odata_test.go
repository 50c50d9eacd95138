package odata

import "testing"

func TestQueryValue(t *testing.T) {
	for in, want := range map[string]string{
		"subject eq 'a b'":          "subject%20eq%20'a%20b'",
		"$select=id,subject":        "$select%3Did,subject",
		"a+b&c#d?e":                 "a%2Bb%26c%23d%3Fe",
		"startswith(subject,'x:y')": "startswith(subject,'x:y')",
		"ü":                         "%C3%BC",
		"-._~$'(),:@/!*AZaz09":      "-._~$'(),:@/!*AZaz09",
	} {
		if got := QueryValue(in); got != want {
			t.Errorf("QueryValue(%q) = %q, want %q", in, got, want)
		}
	}
}
