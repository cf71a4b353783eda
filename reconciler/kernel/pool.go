package kernel

import (
	"crypto/sha256"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/types"
)

// clientPool holds one etcd client per PD endpoint and TLS Secret, and the Backups using
// each: a client is closed when the last of them is released, or replaced when its TLS
// material changed.
type clientPool struct {
	mu      sync.Mutex
	clients map[string]*pooledClient
	users   map[string]map[types.NamespacedName]struct{}
}

type pooledClient struct {
	cli *clientv3.Client
	// tlsSum identifies the TLS material the client was made with: a rotated Secret
	// gets a new client.
	tlsSum [sha256.Size]byte
}

func newClientPool() *clientPool {
	return &clientPool{clients: map[string]*pooledClient{}, users: map[string]map[types.NamespacedName]struct{}{}}
}

// use counts backup among the users of key, so the client outlives none of them.
func (p *clientPool) use(key string, backup types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.useLocked(key, backup)
}

func (p *clientPool) useLocked(key string, backup types.NamespacedName) {
	if p.users[key] == nil {
		p.users[key] = map[types.NamespacedName]struct{}{}
	}
	p.users[key][backup] = struct{}{}
}

// get returns the client for key made with the TLS material sum, making it with dial
// when there is none or the material changed; backup is counted among its users.
func (p *clientPool) get(key string, backup types.NamespacedName, sum [sha256.Size]byte, dial func() (*clientv3.Client, error)) (*clientv3.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.useLocked(key, backup)
	if pc, ok := p.clients[key]; ok {
		if pc.tlsSum == sum {
			return pc.cli, nil
		}
		_ = pc.cli.Close() // the Secret changed: its old material may no longer be trusted
		delete(p.clients, key)
	}
	cli, err := dial()
	if err != nil {
		return nil, err
	}
	p.clients[key] = &pooledClient{cli: cli, tlsSum: sum}
	return cli, nil
}

// release drops backup from the clients it used and closes those nobody uses any more.
func (p *clientPool) release(backup types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, users := range p.users {
		if _, ok := users[backup]; !ok {
			continue
		}
		delete(users, backup)
		if len(users) > 0 {
			continue
		}
		delete(p.users, key)
		if pc, ok := p.clients[key]; ok {
			_ = pc.cli.Close()
			delete(p.clients, key)
		}
	}
}

func (p *clientPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

// closeAll closes every client.
func (p *clientPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, pc := range p.clients {
		_ = pc.cli.Close()
		delete(p.clients, key)
	}
}
