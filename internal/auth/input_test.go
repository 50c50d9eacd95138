package auth

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

func wantInputErr(t *testing.T, err error, variable string) *connerr.Error {
	t.Helper()
	var ce *connerr.Error
	if !errors.As(err, &ce) || ce.Code != connerr.CodeInvalidInput || !ce.Final {
		t.Fatalf("want INVALID_INPUT for %s, got %v", variable, err)
	}
	if !strings.HasPrefix(ce.Message, variable+":") {
		t.Fatalf("message %q does not name %s", ce.Message, variable)
	}
	return ce
}

func TestDecode(t *testing.T) {
	in, err := Decode(map[string]any{
		"type": "oauth-client-credentials-flow", "oauthTokenEndpoint": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
		"clientId": "id", "clientSecret": "sec", "scopes": "a/.default", "clientAuthentication": "basicAuthHeader",
		"token": nil, "tenantId": 42, // unknown keys and nulls are ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Input{Type: TypeClientCredentials, OAuthTokenEndpoint: "https://login.microsoftonline.com/t/oauth2/v2.0/token",
		ClientID: "id", ClientSecret: "sec", Scopes: "a/.default", ClientAuthentication: "basicAuthHeader"}
	if in != want {
		t.Fatalf("got %#v", in)
	}

	cases := []struct {
		raw      any
		variable string
		contains string
	}{
		{nil, "authentication", "required"},
		{"bearer", "authentication", "object"},
		{map[string]any{}, "authentication.type", "bearer, oauth-client-credentials-flow, oauth-refresh-token"},
		{map[string]any{"type": "basic"}, "authentication.type", `got "basic"`},
		{map[string]any{"type": "bearer", "token": 12.5}, "authentication.token", "a number"},
		{map[string]any{"type": []any{"bearer"}}, "authentication.type", "a list"},
	}
	for _, c := range cases {
		_, err := Decode(c.raw)
		ce := wantInputErr(t, err, c.variable)
		if !strings.Contains(ce.Message, c.contains) {
			t.Errorf("%v: message %q lacks %q", c.raw, ce.Message, c.contains)
		}
	}
}

func TestInputStringRedacts(t *testing.T) {
	in := Input{Type: TypeRefreshToken, Token: "tok-SECRET1", ClientSecret: "sec-SECRET2", RefreshToken: "rt-SECRET3", ClientID: "visible-id"}
	for _, s := range []string{in.String(), fmt.Sprint(in), fmt.Sprintf("%v %+v %#v %s", in, in, in, in), fmt.Sprintf("%v", &in)} {
		if strings.Contains(s, "SECRET") {
			t.Fatalf("leak: %s", s)
		}
		if !strings.Contains(s, "visible-id") || !strings.Contains(s, "***") {
			t.Fatalf("unhelpful: %s", s)
		}
	}
}

// Every key of the variable fills its own Input field, the keys are sorted
// (Decode's first error must not depend on map order), and Variable is what
// Decode reads back.
func TestVariableNamesAndRoundTrip(t *testing.T) {
	require.True(t, slices.IsSorted(variableNames))
	seen := map[*string]string{}
	var in Input
	for _, k := range variableNames {
		f := in.field(k)
		require.NotNil(t, f, k)
		if other, dup := seen[f]; dup {
			t.Fatalf("%s and %s fill the same field", k, other)
		}
		seen[f] = k
	}
	require.Len(t, seen, reflect.TypeOf(in).NumField(), "a field of Input has no key")
	require.Nil(t, in.field("password"))

	want := Input{Type: TypeClientCredentials, OAuthTokenEndpoint: "https://login.microsoftonline.com/t/oauth2/v2.0/token",
		ClientID: "app", ClientSecret: "{{secrets.S}}", Scopes: DefaultScopes, ClientAuthentication: ClientAuthHeader}
	v := want.Variable()
	require.NotContains(t, v, "token", "empty fields are left out")
	got, err := Decode(v)
	require.NoError(t, err)
	require.Equal(t, want, got)
}
