package forward

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"

	"github.com/tinylib/msgp/msgp"
)

// The shared-key handshake of forward protocol v1:
//
//	server: ["HELO", {"nonce": nonce, "auth": "", "keepalive": true}]
//	client: ["PING", hostname, salt, hex(sha512(salt+hostname+nonce+key)), username, password]
//	server: ["PONG", ok, reason, hostname, hex(sha512(salt+hostname+nonce+key))]
//
// Salts and nonces are raw bytes: Fluent Bit's salt is not valid UTF-8, so nothing here treats
// them as text. Username/password authentication is not offered ("auth" is empty).

var errHandshake = errors.New("shared key mismatch")

func newNonce() []byte {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms
	return nonce
}

func appendHELO(dst, nonce []byte) []byte {
	dst = msgp.AppendArrayHeader(dst, 2)
	dst = msgp.AppendString(dst, "HELO")
	dst = msgp.AppendMapHeader(dst, 3)
	dst = msgp.AppendString(dst, "nonce")
	dst = msgp.AppendBytes(dst, nonce)
	dst = msgp.AppendString(dst, "auth")
	dst = msgp.AppendString(dst, "")
	dst = msgp.AppendString(dst, "keepalive")
	return msgp.AppendBool(dst, true)
}

// digest is hex(sha512(salt + hostname + nonce + key)).
func digest(salt, hostname, nonce []byte, key string) []byte {
	h := sha512.New()
	h.Write(salt)
	h.Write(hostname)
	h.Write(nonce)
	h.Write([]byte(key))
	return hex.AppendEncode(nil, h.Sum(nil))
}

// checkPING verifies a PING frame and returns the PONG to send; ok is false when the client
// must be refused (after the PONG is written).
func checkPING(frame, nonce []byte, key, serverHost string) (pong []byte, ok bool) {
	refuse := func(reason string) ([]byte, bool) {
		dst := msgp.AppendArrayHeader(nil, 5)
		dst = msgp.AppendString(dst, "PONG")
		dst = msgp.AppendBool(dst, false)
		dst = msgp.AppendString(dst, reason)
		dst = msgp.AppendString(dst, "")
		return msgp.AppendString(dst, ""), false
	}
	n, b, err := msgp.ReadArrayHeaderBytes(frame)
	if err != nil || n < 4 {
		return refuse("malformed PING")
	}
	var parts [4][]byte // "PING", hostname, salt, digest
	for i := range parts {
		v, ok := stringValue(b)
		if !ok {
			return refuse("malformed PING")
		}
		parts[i] = v
		if b, err = msgp.Skip(b); err != nil {
			return refuse("malformed PING")
		}
	}
	if string(parts[0]) != "PING" {
		return refuse("expected PING")
	}
	hostname, salt, got := parts[1], parts[2], parts[3]
	if subtle.ConstantTimeCompare(digest(salt, hostname, nonce, key), got) != 1 {
		return refuse("shared_key mismatch")
	}
	dst := msgp.AppendArrayHeader(nil, 5)
	dst = msgp.AppendString(dst, "PONG")
	dst = msgp.AppendBool(dst, true)
	dst = msgp.AppendString(dst, "")
	dst = msgp.AppendString(dst, serverHost)
	dst = msgp.AppendString(dst, string(digest(salt, []byte(serverHost), nonce, key)))
	return dst, true
}
