// Command bench measures tidb-backup-guard; `make bench` runs it. Subcommands:
//
//	certs DIR                      write a serving certificate for 127.0.0.1 into DIR
//	server ADDR CERTDIR            serve the webhooks and a no-op endpoint (pin it to a core)
//	load ADDR CERTDIR              drive the server open-loop at fixed rates (pin it elsewhere)
//	e2e                            create latency through a real API server, webhooks on and off
//	pair                           one create at a time: our webhook pair against a floor pair
//	modes                          one create at a time: no admission, CEL mode, webhook mode
//	scale N[,N...] BINARY          the reconciler against N failing log Backups
//	plot OUT N:RATE:RSS...         an SVG of scale results (records/s, peak RSS in MiB)
//
// Results are printed as Markdown tables for docs/benchmarks.md.
package main

import (
	"fmt"
	"os"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench certs|server|load|e2e|pair|modes|scale|plot ...")
		os.Exit(2)
	}
	// The clients log nothing worth a Markdown table (and controller-runtime would print a
	// stack trace to say no logger was set).
	ctrllog.SetLogger(logr.Discard())
	var err error
	switch os.Args[1] {
	case "certs":
		err = writeCerts(os.Args[2])
	case "server":
		err = server(os.Args[2], os.Args[3])
	case "load":
		err = load(os.Args[2], os.Args[3])
	case "e2e":
		err = e2e()
	case "pair":
		err = pair()
	case "modes":
		err = modes()
	case "scale":
		err = scale(os.Args[2], os.Args[3])
	case "plot":
		err = plot(os.Args[2], os.Args[3:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
