package forward

import (
	"context"
	"net"

	"github.com/tailgate-dev/tailgate/collector"
)

// PeerMetadata gives a connection's source the Kubernetes metadata of the pod behind the
// peer (kube.Cache: by pod IP for TCP, by SO_PEERCRED for a unix socket) and keeps it current
// until detach is called. It may wait, bounded and until ctx ends, for a pod the cache does
// not know yet.
type PeerMetadata interface {
	AttachPeer(ctx context.Context, nc net.Conn, src *collector.Source) (detach func())
}

// SetPeerMetadata makes every connection's records carry its peer pod's metadata (or the
// node's alone when no pod is found). Call before Run.
func (in *Input) SetPeerMetadata(p PeerMetadata) { in.podMeta = p }
