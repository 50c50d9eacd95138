// Command loadtest-baseline is the load test's baseline worker (see
// internal/loadtest/bareworker); `make bench` builds and runs it.
package main

import (
	"fmt"
	"os"

	"github.com/o365-mail-connector/o365-mail-connector/internal/loadtest/bareworker"
)

func main() {
	cfg, err := bareworker.FromEnv(os.Getenv)
	if err == nil {
		err = bareworker.Run(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest-baseline:", err)
		os.Exit(1)
	}
}
