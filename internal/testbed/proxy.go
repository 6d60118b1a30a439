package testbed

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// Proxy forwards TCP connections to a server, and can play a stalled or
// frozen peer: Stall drops everything from then on, in both directions, as
// a hung server or network would (the connections stay open but nothing
// gets through); Pause holds everything, as a SIGSTOPped process would,
// until Resume delivers it late.
type Proxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	down    atomic.Bool // Cut: new connections are refused
	wg      sync.WaitGroup

	mu      sync.Mutex
	conns   []net.Conn
	resumed chan struct{} // nil: not paused; closed by Resume
}

// NewProxy forwards to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &Proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.Resume()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Addr is the host:port clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the NATS URL clients dial.
func (p *Proxy) URL() string { return "nats://" + p.Addr() }

// Stall stops forwarding for good.
func (p *Proxy) Stall() { p.stalled.Store(true) }

// Pause holds every byte until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed == nil {
		p.resumed = make(chan struct{})
	}
}

// Resume delivers what Pause held, and forwards again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumed != nil {
		close(p.resumed)
		p.resumed = nil
	}
}

// Kill closes every connection, as the death of a process would.
func (p *Proxy) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

// Cut closes every connection and refuses new ones until Restore, as a
// network partition would.
func (p *Proxy) Cut() {
	p.down.Store(true)
	p.Kill()
}

// Restore accepts connections again after Cut.
func (p *Proxy) Restore() { p.down.Store(false) }

func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resumed
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			_ = client.Close()
			continue
		}
		upstream, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, upstream)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(upstream, client) })
		p.wg.Go(func() { p.pipe(client, upstream) })
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if gate := p.gate(); gate != nil {
			<-gate
		}
		if n > 0 && !p.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
