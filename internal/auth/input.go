package auth

import (
	"fmt"
	"strings"

	"github.com/o365-mail-connector/o365-mail-connector/internal/connerr"
)

// Authentication types (contract section 2, authentication.type).
const (
	TypeBearer            = "bearer"
	TypeClientCredentials = "oauth-client-credentials-flow"
	TypeRefreshToken      = "oauth-refresh-token"
)

// Where the client id and secret go (authentication.clientAuthentication).
const (
	ClientAuthBody   = "credentialsBody"
	ClientAuthHeader = "basicAuthHeader"
)

// DefaultScopes is what Graph app-only and delegated refreshes ask for when
// the modeler gave no scopes.
const DefaultScopes = "https://graph.microsoft.com/.default"

var types = []string{TypeBearer, TypeClientCredentials, TypeRefreshToken}

// Input is the `authentication` job variable after secret substitution.
type Input struct {
	Type                 string `json:"type"`
	Token                string `json:"token"`
	OAuthTokenEndpoint   string `json:"oauthTokenEndpoint"`
	ClientID             string `json:"clientId"`
	ClientSecret         string `json:"clientSecret"`
	Scopes               string `json:"scopes"`
	ClientAuthentication string `json:"clientAuthentication"`
	RefreshToken         string `json:"refreshToken"`
}

// String shows the input with credentials masked, so that an Input can be
// logged or wrapped into an error without thought.
func (i Input) String() string {
	mask := func(s string) string {
		if s == "" {
			return `""`
		}
		return "***"
	}
	return fmt.Sprintf("{type:%q oauthTokenEndpoint:%q clientId:%q clientSecret:%s scopes:%q clientAuthentication:%q token:%s refreshToken:%s}",
		i.Type, i.OAuthTokenEndpoint, i.ClientID, mask(i.ClientSecret), i.Scopes, i.ClientAuthentication,
		mask(i.Token), mask(i.RefreshToken))
}

// GoString keeps %#v from printing the fields raw.
func (i Input) GoString() string { return "auth.Input" + i.String() }

// variableNames are the keys of the authentication variable, sorted so that
// the first error Decode reports does not depend on map order.
var variableNames = []string{
	"clientAuthentication", "clientId", "clientSecret", "oauthTokenEndpoint",
	"refreshToken", "scopes", "token", "type",
}

// field is the Input field that the variable key name fills (nil for a key
// it does not know).
func (i *Input) field(name string) *string {
	switch name {
	case "type":
		return &i.Type
	case "token":
		return &i.Token
	case "oauthTokenEndpoint":
		return &i.OAuthTokenEndpoint
	case "clientId":
		return &i.ClientID
	case "clientSecret":
		return &i.ClientSecret
	case "scopes":
		return &i.Scopes
	case "clientAuthentication":
		return &i.ClientAuthentication
	case "refreshToken":
		return &i.RefreshToken
	}
	return nil
}

// Variable is the input as the `authentication` job variable that a
// template's input mappings produce, empty fields left out (for the
// sandbox, the load test and tests).
func (i Input) Variable() map[string]any {
	m := map[string]any{}
	for _, k := range variableNames {
		if v := *i.field(k); v != "" {
			m[k] = v
		}
	}
	return m
}

// Decode reads the `authentication` job variable. It checks the shape and
// the type; the fields each type needs are checked by Manager.Credentials.
// Keys it does not know are ignored, as templates of other versions may
// carry more.
func Decode(raw any) (Input, error) {
	var in Input
	if raw == nil {
		return in, connerr.Input("authentication", "required: an object with a type (%s)", strings.Join(types, ", "))
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return in, connerr.Input("authentication", "must be an object, got %s", kind(raw))
	}
	for _, k := range variableNames {
		v, present := m[k]
		if !present || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			// The value itself may be a credential: name its kind only.
			return Input{}, connerr.Input("authentication."+k, "must be a string, got %s", kind(v))
		}
		*in.field(k) = s
	}
	switch in.Type {
	case TypeBearer, TypeClientCredentials, TypeRefreshToken:
		return in, nil
	case "":
		return Input{}, connerr.Input("authentication.type", "required, one of %s", strings.Join(types, ", "))
	default:
		return Input{}, connerr.Input("authentication.type", "must be one of %s, got %s", strings.Join(types, ", "), connerr.Quote(in.Type, 64))
	}
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case nil:
		return "null"
	default:
		return "a number"
	}
}

// settings is a validated Input with defaults applied.
type settings struct {
	grant     string // "client_credentials" or "refresh_token"
	endpoint  string
	host      string
	clientID  string
	secret    string
	scopes    []string
	authStyle string // ClientAuthBody or ClientAuthHeader
	refresh   string
}

// validate checks what each type needs; it does no I/O.
func (in Input) validate() (settings, error) {
	var s settings
	need := func(field, value string) error {
		if strings.TrimSpace(value) == "" {
			return connerr.Input("authentication."+field, "required for authentication type %s", in.Type)
		}
		return nil
	}
	switch in.Type {
	case TypeClientCredentials:
		s.grant = grantClientCredentials
		for _, f := range [][2]string{{"oauthTokenEndpoint", in.OAuthTokenEndpoint}, {"clientId", in.ClientID}, {"clientSecret", in.ClientSecret}} {
			if err := need(f[0], f[1]); err != nil {
				return s, err
			}
		}
	case TypeRefreshToken:
		s.grant = grantRefreshToken
		for _, f := range [][2]string{{"oauthTokenEndpoint", in.OAuthTokenEndpoint}, {"clientId", in.ClientID}, {"refreshToken", in.RefreshToken}} {
			if err := need(f[0], f[1]); err != nil {
				return s, err
			}
		}
	default:
		return s, connerr.Input("authentication.type", "must be one of %s, got %s", strings.Join(types, ", "), connerr.Quote(in.Type, 64))
	}
	s.endpoint = strings.TrimSpace(in.OAuthTokenEndpoint)
	s.clientID = strings.TrimSpace(in.ClientID)
	s.secret = in.ClientSecret
	s.refresh = strings.TrimSpace(in.RefreshToken)
	s.scopes = strings.Fields(in.Scopes)
	if len(s.scopes) == 0 {
		s.scopes = []string{DefaultScopes}
	}
	switch in.ClientAuthentication {
	case "", ClientAuthBody:
		s.authStyle = ClientAuthBody
	case ClientAuthHeader:
		if s.secret == "" {
			return s, connerr.Input("authentication.clientSecret", "required when authentication.clientAuthentication is %s", ClientAuthHeader)
		}
		s.authStyle = ClientAuthHeader
	default:
		return s, connerr.Input("authentication.clientAuthentication", "must be %s or %s, got %s",
			ClientAuthBody, ClientAuthHeader, connerr.Quote(in.ClientAuthentication, 64))
	}
	return s, nil
}
