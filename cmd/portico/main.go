// Command portico puts Docker containers behind nginx with automatic
// certificates. See README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	err := serve(os.Args, env{lookup: os.LookupEnv}, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "portico:", err)
		os.Exit(exitCode(err))
	}
}
