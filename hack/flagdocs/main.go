// Command flagdocs writes the command-line reference (one Markdown page per command) from
// the binary's own command tree, with cobra's doc generator, so that the documented flags
// are the flags there are: `make docs`, and test/build checks that the pages are current.
//
//	go run ./hack/flagdocs -out docs/reference
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tidb-backup-guard/tidb-backup-guard/hack/flagdocs/gen"
)

func main() {
	out := flag.String("out", "docs/reference", "directory of the pages (its .md files are replaced)")
	flag.Parse()
	if err := gen.Write(*out); err != nil {
		fmt.Fprintf(os.Stderr, "flagdocs: %v\n", err)
		os.Exit(1)
	}
}
