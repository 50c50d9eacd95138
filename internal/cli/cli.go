// Package cli is the command line: run (default), config, version, feel
// and sandbox. It returns exit codes instead of exiting so that tests can
// drive it.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/o365-mail-connector/o365-mail-connector/internal/app"
	"github.com/o365-mail-connector/o365-mail-connector/internal/config"
	"github.com/o365-mail-connector/o365-mail-connector/internal/feel"
	"github.com/o365-mail-connector/o365-mail-connector/internal/gctune"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sandbox"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2 // bad configuration or arguments

	// helped is load's answer to -h/--help: nothing more to do, exit 0.
	helped = -1
)

// Env is the process environment, injectable for tests.
type Env struct {
	Version   string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	LookupEnv func(string) (string, bool)
	// Context replaces the signal-bound context (tests).
	Context context.Context
}

const usage = `o365-mail-connector: a Camunda 8 job worker for Microsoft 365 mail (Microsoft Graph)

Usage:
  o365-mail-connector [run] [flags]       run the worker against ZEEBE_ADDRESS
  o365-mail-connector sandbox             run the worker end to end on embedded simulators
  o365-mail-connector config [flags]      print the effective configuration (secrets as ***)
  o365-mail-connector feel EXPR [--context FILE|-]   evaluate a FEEL expression, print JSON
  o365-mail-connector version

Every setting is an environment variable, a key of the --config YAML file, and a flag
(ZEEBE_ADDRESS = --zeebe-address); flags win over the environment, the environment over the file.
`

// Main runs the command line and returns the exit code.
func Main(args []string, env Env) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return run(args, env)
	case "config":
		cfg, code := load(args, env)
		if code != ExitOK {
			return exitCode(code)
		}
		fmt.Fprint(env.Stdout, cfg.Print())
		return ExitOK
	case "version":
		fmt.Fprintln(env.Stdout, "o365-mail-connector", env.Version)
		return ExitOK
	case "feel":
		return feelCmd(args, env)
	case "sandbox":
		return sandboxCmd(args, env)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "unknown command %q\n\n%s", cmd, usage)
	return ExitUsage
}

func exitCode(loaded int) int {
	if loaded == helped {
		return ExitOK
	}
	return loaded
}

func load(args []string, env Env) (config.Config, int) {
	fs := pflag.NewFlagSet("o365-mail-connector", pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	config.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(env.Stdout, usage+"\nFlags:\n")
		fs.SetOutput(env.Stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return config.Config{}, helped
		}
		fmt.Fprintln(env.Stderr, err)
		return config.Config{}, ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "unexpected argument %q\n", fs.Arg(0))
		return config.Config{}, ExitUsage
	}
	cfg, err := config.Load(fs, env.LookupEnv)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(env.Stderr, "configuration error:")
			for _, p := range ce.Problems {
				fmt.Fprintln(env.Stderr, "  "+p)
			}
		} else {
			fmt.Fprintln(env.Stderr, "configuration error:", err)
		}
		return cfg, ExitUsage
	}
	return cfg, ExitOK
}

func signalContext(env Env) (context.Context, context.CancelFunc) {
	if env.Context != nil {
		return context.WithCancel(env.Context)
	}
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func run(args []string, env Env) int {
	cfg, code := load(args, env)
	if code != ExitOK {
		return exitCode(code)
	}
	rt, err := app.Build(cfg, app.Options{LogOutput: env.Stderr, LookupEnv: env.LookupEnv})
	if err != nil {
		fmt.Fprintln(env.Stderr, "startup failed:", err)
		return ExitFailed
	}
	// Process-wide, so started here and not by app, which tests build
	// several times in one process.
	tuner := gctune.Start(gctune.Config{Floor: uint64(cfg.GCHeapFloor)}, env.LookupEnv)
	defer tuner.Stop()
	if limit, err := gctune.SetMemoryLimit(cfg.MemoryLimitRatio, memlimit.FromCgroup, env.LookupEnv); err != nil {
		rt.Log.Warn("reading the container's memory limit failed; Go's memory limit is not set", zap.Error(err))
	} else if limit > 0 {
		rt.Log.Info("Go's memory limit follows the container's", zap.Int64("goMemLimitBytes", limit), zap.Float64("ratio", cfg.MemoryLimitRatio))
	}
	ctx, stop := signalContext(env)
	defer stop()
	if err := rt.Run(ctx); err != nil {
		fmt.Fprintln(env.Stderr, "worker failed:", err)
		return ExitFailed
	}
	return ExitOK
}

func feelCmd(args []string, env Env) int {
	fs := pflag.NewFlagSet("feel", pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	ctxFile := fs.String("context", "", "JSON file with the variables (- for standard input), e.g. a saved Graph response")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return ExitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "usage: o365-mail-connector feel EXPR [--context FILE|-]")
		return ExitUsage
	}
	vars := map[string]any{}
	if *ctxFile != "" {
		var data []byte
		var err error
		if *ctxFile == "-" {
			data, err = io.ReadAll(env.Stdin)
		} else {
			data, err = os.ReadFile(*ctxFile)
		}
		if err != nil {
			fmt.Fprintln(env.Stderr, "--context:", err)
			return ExitUsage
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&vars); err != nil {
			fmt.Fprintln(env.Stderr, "--context: expected a JSON object:", err)
			return ExitUsage
		}
		// A saved connector response can be used as is: its fields and
		// `response` are in scope, as in a result expression.
		if _, ok := vars["response"]; !ok {
			if _, hasBody := vars["body"]; hasBody {
				vars["response"] = map[string]any{"status": vars["status"], "headers": vars["headers"], "body": vars["body"]}
			}
		}
	}
	src := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(fs.Arg(0)), "="))
	expr, err := feel.Compile(src)
	if err != nil {
		fmt.Fprintln(env.Stderr, "syntax error:", err)
		return ExitFailed
	}
	out, err := expr.Eval(vars)
	if err != nil {
		fmt.Fprintln(env.Stderr, "evaluation failed:", err)
		return ExitFailed
	}
	j, err := feel.ToJSON(out)
	if err != nil {
		fmt.Fprintln(env.Stderr, "result is not JSON:", err)
		return ExitFailed
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return ExitFailed
	}
	return ExitOK
}

func sandboxCmd(args []string, env Env) int {
	if len(args) > 0 {
		fmt.Fprintln(env.Stderr, "usage: o365-mail-connector sandbox")
		return ExitUsage
	}
	ctx, stop := signalContext(env)
	defer stop()
	if err := sandbox.Run(ctx, env.Stdout, env.LookupEnv); err != nil {
		fmt.Fprintln(env.Stderr, "sandbox failed:", err)
		return ExitFailed
	}
	return ExitOK
}
