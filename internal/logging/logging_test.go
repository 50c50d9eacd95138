package logging

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

func TestSecretsNeverReachTheLog(t *testing.T) {
	secrets := &redact.Set{}
	const plain, quoted = "s3cr3t-value", `we"ird\secret`
	secrets.Add(plain, quoted)
	for _, format := range []string{"json", "console"} {
		var buf bytes.Buffer
		log, err := New(&buf, "debug", format, secrets)
		require.NoError(t, err)
		log = log.With(zap.String("ctx", "x"+plain))
		log.Info("token "+plain,
			zap.String("s", quoted),
			zap.Error(errors.New("failed with "+quoted)),
			zap.Any("nested", map[string]any{"k": []string{plain}}),
		)
		out := buf.String()
		require.NotEmpty(t, out)
		require.NotContains(t, out, plain, format)
		require.NotContains(t, out, "ird", format) // the quoted secret, escaped or not
		require.Contains(t, out, redact.Mask)
	}
}

func TestLevelAndFormatChecked(t *testing.T) {
	_, err := New(nil, "loud", "json", nil)
	require.Error(t, err)
	_, err = New(nil, "info", "xml", nil)
	require.Error(t, err)
	var buf bytes.Buffer
	log, err := New(&buf, "warn", "json", nil)
	require.NoError(t, err)
	log.Info("hidden")
	log.Warn("shown")
	require.False(t, strings.Contains(buf.String(), "hidden"))
	require.True(t, strings.Contains(buf.String(), "shown"))
}
