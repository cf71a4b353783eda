package testenv

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"

	"k8s.io/client-go/rest"
)

// Proxy forwards TCP connections to the API server and can cut them: to a client behind
// it, Down looks like the API server going away (connections reset, new ones refused)
// and Up like it coming back on the same address. envtest cannot restart kube-apiserver
// in place (a restart gets a new CA and loses its users), so this is how the tests take
// the API server away from the reconciler.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// StartProxy forwards a local port to the API server of cfg.
func StartProxy(cfg *rest.Config) (*Proxy, error) {
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: u.Host, conns: map[net.Conn]struct{}{}}
	if err := p.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	p.addr = p.ln.Addr().String()
	return p, nil
}

// Config returns cfg pointed at the proxy. The API server's certificate names 127.0.0.1,
// so TLS verification holds.
func (p *Proxy) Config(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = "https://" + p.addr
	return c
}

func (p *Proxy) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.accept(ln)
	return nil
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Down stops accepting and cuts every open connection.
func (p *Proxy) Down() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return errors.New("proxy already down")
	}
	err := p.ln.Close()
	p.ln = nil
	for c := range p.conns {
		c.Close()
	}
	return err
}

// Up accepts again on the same address.
func (p *Proxy) Up() error { return p.listen(p.addr) }

// Close takes the proxy down for good.
func (p *Proxy) Close() { _ = p.Down() }
