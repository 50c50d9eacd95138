package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/identitysim"
	"github.com/o365-mail-connector/o365-mail-connector/internal/sim/zeebesim"
)

// No Docker engine runs where the tests run, so the image is checked in
// parts: the Dockerfile's instructions, and the binary built exactly as its
// build stage builds it, run as the image runs it (uid 65532, no writable
// home, no shell on PATH).

const (
	moduleRoot  = "../.."
	nonrootID   = 65532 // distroless "nonroot"
	testVersion = "9.8.7-imagetest"
)

// ---- a small Dockerfile reader

type instruction struct {
	cmd  string // upper case
	args string
}

type stage struct {
	from string // image reference
	name string // AS name
	ins  []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(moduleRoot, "Dockerfile"))
	require.NoError(t, err)
	var logical []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue // comments, also inside continued instructions
		}
		trimmed := strings.TrimRight(line, " \t")
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		if s := strings.TrimSpace(cur.String()); s != "" {
			logical = append(logical, s)
		}
		cur.Reset()
	}
	require.NoError(t, sc.Err())

	var stages []stage
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if cmd == "FROM" {
			w := shellWords(args)
			var st stage
			for i := 0; i < len(w); i++ {
				switch {
				case strings.HasPrefix(w[i], "--"):
				case strings.EqualFold(w[i], "AS") && i+1 < len(w):
					st.name = w[i+1]
					i++
				default:
					st.from = w[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		require.NotEmpty(t, stages, "Dockerfile: %s before FROM", cmd)
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, instruction{cmd, args})
	}
	require.GreaterOrEqual(t, len(stages), 2, "Dockerfile: multi-stage")
	return stages
}

// shellWords splits like a POSIX shell without expansion: blanks separate,
// quotes group, a backslash escapes.
func shellWords(s string) []string {
	var out []string
	var w strings.Builder
	in, quote := false, rune(0)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == '\'':
			w.WriteRune(r)
		case r == '\\' && i+1 < len(rs):
			i++
			w.WriteRune(rs[i])
			in = true
		case quote == 0 && (r == '"' || r == '\''):
			quote, in = r, true
		case quote == 0 && (r == ' ' || r == '\t'):
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

var varRef = regexp.MustCompile(`\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)`)

// expand substitutes ${VAR}, ${VAR:-default} and $VAR as the shell in the
// RUN instruction does with the build arguments.
func expand(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		g := varRef.FindStringSubmatch(m)
		name := g[1] + g[3]
		if v := vars[name]; v != "" {
			return v
		}
		return g[2]
	})
}

// envOf collects a stage's ENV instructions (key=value form).
func envOf(t *testing.T, st stage) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range st.all("ENV") {
		for _, w := range shellWords(in.args) {
			k, v, ok := strings.Cut(w, "=")
			require.True(t, ok, "ENV %q: use the key=value form", in.args)
			env[k] = v
		}
	}
	return env
}

// goBuild is the build stage's go build command.
type goBuild struct {
	env  map[string]string // assignments before `go`
	args []string          // after `go build`
}

func (b goBuild) flag(name string) (string, bool) {
	for i, a := range b.args {
		if a == name && i+1 < len(b.args) {
			return b.args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func findGoBuild(t *testing.T, st stage) goBuild {
	t.Helper()
	var found []goBuild
	for _, in := range st.all("RUN") {
		w := shellWords(in.args)
		for len(w) > 0 && strings.HasPrefix(w[0], "--") {
			w = w[1:] // --mount=... belongs to RUN, not to the command
		}
		b := goBuild{env: map[string]string{}}
		for len(w) > 0 && strings.Contains(w[0], "=") && w[0] != "go" {
			k, v, _ := strings.Cut(w[0], "=")
			b.env[k] = v
			w = w[1:]
		}
		if len(w) >= 2 && w[0] == "go" && w[1] == "build" {
			b.args = w[2:]
			found = append(found, b)
		}
	}
	require.Len(t, found, 1, "build stage: exactly one `go build`")
	return found[0]
}

func goModVersion(t *testing.T) (int, int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(moduleRoot, "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindSubmatch(data)
	require.NotNil(t, m, "go.mod: go directive")
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major, minor
}

// ---- what can be checked without building

func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	build, final := stages[0], stages[len(stages)-1]

	// The toolchain image must be able to build the module.
	m := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(build.from)
	require.NotNil(t, m, "build stage FROM %q: a golang image", build.from)
	major, minor := goModVersion(t)
	imgMajor, _ := strconv.Atoi(m[1])
	imgMinor, _ := strconv.Atoi(m[2])
	require.True(t, imgMajor > major || imgMajor == major && imgMinor >= minor,
		"golang:%s.%s is older than go.mod's go %d.%d", m[1], m[2], major, minor)

	b := findGoBuild(t, build)
	require.Equal(t, "0", b.env["CGO_ENABLED"], "static binary")
	require.Contains(t, b.args, "-trimpath")
	ld, ok := b.flag("-ldflags")
	require.True(t, ok, "go build -ldflags")
	ldw := strings.Fields(ld)
	require.Contains(t, ldw, "-s")
	require.Contains(t, ldw, "-w")
	require.Contains(t, ld, "-X main.version=${VERSION}")
	var versionArg bool
	for _, in := range build.all("ARG") {
		versionArg = versionArg || strings.HasPrefix(in.args, "VERSION")
	}
	require.True(t, versionArg, "build stage: ARG VERSION")
	require.Equal(t, "./cmd/o365-mail-connector", b.args[len(b.args)-1])
	out, ok := b.flag("-o")
	require.True(t, ok, "go build -o")

	require.Regexp(t, `^gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?$`, final.from)
	require.Empty(t, final.all("RUN"), "the runtime image has no shell to run anything")

	users := final.all("USER")
	require.NotEmpty(t, users)
	require.Contains(t, []string{"nonroot", "nonroot:nonroot", "65532", "65532:65532"}, users[len(users)-1].args)

	var ports []string
	for _, in := range final.all("EXPOSE") {
		ports = append(ports, strings.Fields(in.args)...)
	}
	require.Contains(t, ports, "8080")

	env := envOf(t, final)
	require.True(t, strings.HasPrefix(env["ZEEBE_CLIENT_CONFIG_PATH"], "/tmp/"),
		"ZEEBE_CLIENT_CONFIG_PATH = %q: the token cache must live under /tmp (an emptyDir), not in the read-only home", env["ZEEBE_CLIENT_CONFIG_PATH"])
	if addr, ok := env["MANAGEMENT_ADDR"]; ok {
		require.True(t, strings.HasSuffix(addr, ":8080"), "MANAGEMENT_ADDR %q does not listen on the exposed port", addr)
	}

	// Exec form: no shell starts the binary, and it is the one the build
	// stage produced.
	eps := final.all("ENTRYPOINT")
	require.Len(t, eps, 1)
	var entry []string
	require.NoError(t, json.Unmarshal([]byte(eps[0].args), &entry), "ENTRYPOINT must be the JSON (exec) form")
	require.NotEmpty(t, entry)
	var copied bool
	for _, in := range final.all("COPY") {
		w := shellWords(in.args)
		if len(w) == 3 && w[0] == "--from="+build.name && w[1] == out && w[2] == entry[0] {
			copied = true
		}
	}
	require.True(t, copied, "COPY --from=%s %s %s", build.name, out, entry[0])
}

// ---- the binary as the image holds and runs it

// buildLikeDockerfile runs the build stage's go build for this machine's
// platform, with the output in dir.
func buildLikeDockerfile(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	b := findGoBuild(t, readDockerfile(t)[0])
	args := map[string]string{"VERSION": testVersion, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	bin := filepath.Join(dir, "o365-mail-connector")
	cmdArgs := []string{"build"}
	for i := 0; i < len(b.args); i++ {
		a := expand(b.args[i], args)
		cmdArgs = append(cmdArgs, a)
		if a == "-o" && i+1 < len(b.args) {
			cmdArgs = append(cmdArgs, bin)
			i++
		}
	}
	cmd := exec.Command(goBin, cmdArgs...)
	cmd.Dir = moduleRoot
	cmd.Env = os.Environ()
	for k, v := range b.env {
		cmd.Env = append(cmd.Env, k+"="+expand(v, args))
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(cmdArgs, " "), out)
	return bin
}

// imageDirs is a world-traversable directory with the binary, a read-only
// directory standing in for the image's root filesystem and home, and a
// writable one standing in for the /tmp emptyDir.
type imageDirs struct {
	base, bin, ro, tmp string
}

func TestImageBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	base, err := os.MkdirTemp("", "o365-image-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	d := imageDirs{base: base, bin: buildLikeDockerfile(t, base), ro: filepath.Join(base, "ro"), tmp: filepath.Join(base, "tmp")}
	require.NoError(t, os.Mkdir(d.ro, 0o555))
	require.NoError(t, os.Chmod(d.ro, 0o555)) // past the umask
	require.NoError(t, os.Mkdir(d.tmp, 0o777))
	require.NoError(t, os.Chmod(d.tmp, 0o1777))

	t.Run("static", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("ELF checks need linux")
		}
		f, err := elf.Open(d.bin)
		require.NoError(t, err)
		defer f.Close()
		for _, p := range f.Progs {
			require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary asks for a dynamic loader")
			require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "the binary has a dynamic section")
		}
		require.Nil(t, f.Section(".interp"))
		libs, err := f.ImportedLibraries()
		require.NoError(t, err)
		require.Empty(t, libs)

		info, err := buildinfo.ReadFile(d.bin)
		require.NoError(t, err)
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		require.Equal(t, "0", settings["CGO_ENABLED"])
		require.Equal(t, "true", settings["-trimpath"])
	})

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(d.bin, "version").Output()
		require.NoError(t, err)
		require.Equal(t, "o365-mail-connector "+testVersion+"\n", string(out))
	})

	t.Run("sandbox as nonroot without writable files", func(t *testing.T) {
		requireRoot(t)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := d.command(ctx, t, "sandbox")
		cmd.Env = append(cmd.Env, "ZEEBE_CLIENT_CONFIG_PATH="+d.underTmp(t, "/tmp/zeebe-token-cache/credentials"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "stderr:\n%s\nstdout:\n%s", &stderr, &stdout)
		out := stdout.String()
		require.Contains(t, out, "Scenario finished in")
		require.Contains(t, out, "BPMN error MAILBOX_NOT_FOUND")
		require.Contains(t, out, "bob@contoso.example inbox: 1 messages")

		// Nothing was written: not into the stand-ins for the image's
		// filesystem and /tmp, nor anywhere else uid 65532 could write.
		for _, dir := range []string{d.ro, d.tmp} {
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, entries, "%s", dir)
		}
		requireNothingOwnedBy(t, nonrootID, start, os.TempDir(), "/var/tmp", "/dev/shm")
	})

	t.Run("gateway OAuth token cache under the image's ZEEBE_CLIENT_CONFIG_PATH", func(t *testing.T) {
		requireRoot(t)
		stages := readDockerfile(t)
		env := envOf(t, stages[len(stages)-1])
		cachePath := d.underTmp(t, env["ZEEBE_CLIENT_CONFIG_PATH"])

		gw, err := zeebesim.Start()
		require.NoError(t, err)
		defer gw.Close()
		id, err := identitysim.New()
		require.NoError(t, err)
		defer id.Close()
		id.RegisterClient("zeebe-worker", "zeebe-worker-secret")

		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := d.command(ctx, t, "run")
		for k, v := range env {
			if k != "ZEEBE_CLIENT_CONFIG_PATH" && k != "MANAGEMENT_ADDR" {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		cmd.Env = append(cmd.Env,
			"ZEEBE_CLIENT_CONFIG_PATH="+cachePath,
			"ZEEBE_ADDRESS="+gw.Addr(), "ZEEBE_INSECURE_CONNECTION=true",
			"ZEEBE_CLIENT_ID=zeebe-worker", "ZEEBE_CLIENT_SECRET=zeebe-worker-secret",
			"ZEEBE_AUTHORIZATION_SERVER_URL="+id.TokenURL("camunda"),
			"ZEEBE_TOKEN_AUDIENCE=zeebe-api", "ZEEBE_TOKEN_SCOPE=zeebe-api/.default",
			"MANAGEMENT_ADDR=127.0.0.1:0", "CONNECTOR_SHUTDOWN_GRACE=5s",
		)
		var stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		require.NoError(t, cmd.Start())
		var waitErr error
		exited := make(chan struct{})
		go func() { waitErr = cmd.Wait(); close(exited) }()
		defer func() {
			select {
			case <-exited:
			default:
				_ = cmd.Process.Kill()
				<-exited
			}
		}()

		// The gateway sees polls only once the client has a token; the
		// client writes it to the cache file right after fetching it.
		err = gw.Await(ctx, func(g *zeebesim.Gateway) bool {
			select {
			case <-exited:
				return true
			default:
			}
			return g.ActivationRequests() > 0
		})
		require.NoError(t, err)
		require.Positive(t, gw.ActivationRequests(), "the worker exited before polling:\n%s", stderr.String())
		require.NotEmpty(t, id.Requests(), "no gateway token was fetched")
		require.Equal(t, "zeebe-worker", id.Requests()[0].ClientID)

		var st os.FileInfo
		for {
			if st, err = os.Stat(cachePath); err == nil && st.Size() > 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("token cache %s not written (%v); worker output:\n%s", cachePath, err, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		require.Equal(t, uint32(nonrootID), st.Sys().(*syscall.Stat_t).Uid)
		entries, err := os.ReadDir(d.ro)
		require.NoError(t, err)
		require.Empty(t, entries)
		require.NotContains(t, stderr.String(), "Failed to create OAuth YAML token cache")

		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-exited:
			require.NoError(t, waitErr, "exit after SIGTERM:\n%s", stderr.String())
		case <-ctx.Done():
			t.Fatalf("no exit after SIGTERM:\n%s", stderr.String())
		}
	})
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching to uid 65532 needs root")
	}
}

// command runs the binary as the image does: uid/gid 65532, home and
// working directory read-only, and no PATH to find a shell or tools on.
func (d imageDirs) command(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Dir = d.ro
	cmd.Env = []string{"HOME=" + d.ro, "TMPDIR=" + d.ro, "PATH=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonrootID, Gid: nonrootID, Groups: []uint32{}}}
	return cmd
}

// underTmp maps a path under the image's /tmp into the writable stand-in.
func (d imageDirs) underTmp(t *testing.T, p string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(p, "/tmp/")
	require.True(t, ok, "%q is not under /tmp", p)
	return filepath.Join(d.tmp, rest)
}

// requireNothingOwnedBy fails when uid owns an entry in one of dirs (not
// recursive) that changed since since.
func requireNothingOwnedBy(t *testing.T, uid uint32, since time.Time, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile by someone else
			}
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid == uid && !info.ModTime().Before(since) {
				t.Errorf("uid %d wrote %s", uid, filepath.Join(dir, e.Name()))
			}
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
