// Package logging builds the process logger. Every line goes through the
// process's redact.Set twice: string and error fields before encoding (so a
// secret that JSON encoding would escape is still caught), and the encoded
// line itself (so reflected or nested values are caught too).
package logging

import (
	"errors"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/o365-mail-connector/o365-mail-connector/internal/redact"
)

// New builds a logger writing to w (stderr when nil) at level ("debug",
// "info", "warn", "error") in format "json" or "console".
func New(w io.Writer, level, format string, secrets *redact.Set) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json", "":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, errors.New("unknown log format " + format)
	}
	if w == nil {
		w = os.Stderr
	}
	out := zapcore.Lock(zapcore.AddSync(&redactingWriter{w: w, secrets: secrets}))
	core := &redactingCore{Core: zapcore.NewCore(enc, out, lvl), secrets: secrets}
	return zap.New(core), nil
}

type redactingWriter struct {
	w       io.Writer
	secrets *redact.Set
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	masked := r.secrets.String(string(p))
	if _, err := io.WriteString(r.w, masked); err != nil {
		return 0, err
	}
	return len(p), nil
}

type redactingCore struct {
	zapcore.Core
	secrets *redact.Set
}

func (c *redactingCore) With(fields []zapcore.Field) zapcore.Core {
	return &redactingCore{Core: c.Core.With(c.mask(fields)), secrets: c.secrets}
}

func (c *redactingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *redactingCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = c.secrets.String(e.Message)
	return c.Core.Write(e, c.mask(fields))
}

func (c *redactingCore) mask(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		switch f.Type {
		case zapcore.StringType:
			f.String = c.secrets.String(f.String)
		case zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok && err != nil {
				f = zap.String(f.Key, c.secrets.String(err.Error()))
			}
		case zapcore.StringerType:
			if s, ok := f.Interface.(interface{ String() string }); ok && s != nil {
				f = zap.String(f.Key, c.secrets.String(s.String()))
			}
		}
		out[i] = f
	}
	return out
}
