// Command o365-mail-connector is a Camunda 8 job worker for Microsoft 365
// mail through Microsoft Graph.
package main

import (
	"os"

	"github.com/o365-mail-connector/o365-mail-connector/internal/cli"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Env{Version: version, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}))
}
