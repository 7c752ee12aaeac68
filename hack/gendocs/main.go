// Command gendocs prints docs/cli-reference.md from the flag definitions.
package main

import (
	"fmt"

	"github.com/rapidfort/kimia/flags"
)

func main() { fmt.Print(flags.Reference()) }
