// Command pause is the sandbox ("pause") image of the end-to-end node: it holds a pod's
// namespaces and exits on SIGTERM or SIGINT. Built static, it needs no base image, so the
// node runs without any registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
