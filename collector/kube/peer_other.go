//go:build !linux

package kube

import (
	"errors"
	"net"
)

func peerPID(*net.UnixConn) (int, error) { return 0, errors.New("peer credentials need Linux") }
