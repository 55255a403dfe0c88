package probe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/resplimit"
)

const plainPortHint = "(is TLS enabled on that port?)"

func tlsInstance(addr string, t *handlers.TLS) handlers.Instance {
	inst := instance(addr)
	inst.TLS = t
	return inst
}

// TestProbeTLSToAPlainPort: a TLS client pointed at a plain redis-server
// gets "-ERR" bytes (or silence) for its ClientHello. That is a TLS
// problem with a hint, not a timeout or a protocol error.
func TestProbeTLSToAPlainPort(t *testing.T) {
	srv := redistest.StartT(t)
	start := time.Now()
	pe := probeErr(t, tlsInstance(srv.Addr, &handlers.TLS{InsecureSkipVerify: true}), time.Second)
	if pe.Class != handlers.ClassTLS || !strings.Contains(pe.Error(), plainPortHint) {
		t.Errorf("class %s, error %v; want tls with the hint %q", pe.Class, pe, plainPortHint)
	}
	var hs *resplimit.HandshakeError
	if !errors.As(pe, &hs) || hs.Addr != srv.Addr {
		t.Errorf("error %v is not the handshake error of %s", pe, srv.Addr)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	t.Logf("redis-server: %v", pe)

	// A plain server that answers the ClientHello (Redis does when the
	// hello happens to hold a \n) fails the handshake at once.
	addr := serve(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		if _, err := c.Read(buf); err == nil {
			_, _ = c.Write([]byte("-ERR unknown command '\x16\x03\x01'\r\n"))
		}
		time.Sleep(time.Second)
	})
	start = time.Now()
	pe = probeErr(t, tlsInstance(addr, &handlers.TLS{InsecureSkipVerify: true}), time.Second)
	if pe.Class != handlers.ClassTLS || !strings.Contains(pe.Error(), plainPortHint) {
		t.Errorf("answering server: class %s, error %v; want tls with the hint", pe.Class, pe)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("answering server: took %v, want no wait for the timeout", d)
	}
	t.Logf("answering server: %v", pe)
}

// TestProbeTLSToASilentServer: a server that accepts and never answers the
// ClientHello. go-redis' own TLS dial ignores the context and the probe
// read it as a timeout; the handshake is now bounded and called tls.
func TestProbeTLSToASilentServer(t *testing.T) {
	addr := serve(t, func(c net.Conn) { time.Sleep(3 * time.Second) })
	start := time.Now()
	pe := probeErr(t, tlsInstance(addr, &handlers.TLS{InsecureSkipVerify: true}), 300*time.Millisecond)
	if pe.Class != handlers.ClassTLS || !strings.Contains(pe.Error(), plainPortHint) {
		t.Errorf("class %s, error %v; want tls with the hint %q", pe.Class, pe, plainPortHint)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a silent TLS server took %v, want about one timeout", d)
	}
	t.Logf("%v", pe)
}

// TestProbeRealTLSServer probes redis-server over TLS through the bot's
// dialer: the handshake, the certificate check against the address dialed
// and the limited reads work together. A CA that did not sign the server's
// certificate is a TLS error without the plain-port hint.
func TestProbeRealTLSServer(t *testing.T) {
	dir := t.TempDir()
	ca, other := writeCerts(t, dir)
	port := freePort(t)
	redistest.StartT(t, "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", filepath.Join(dir, "server.pem"), "--tls-key-file", filepath.Join(dir, "server-key.pem"),
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	p := probe.New(2*time.Second, nil)
	defer p.Close()
	snap, err := p.Probe(context.Background(), tlsInstance(addr, &handlers.TLS{CAFile: ca}))
	if err != nil {
		t.Fatalf("probe over TLS: %v", err)
	}
	if len(snap.Missing) != 0 || snap.Doctor == "" || snap.MemoryStats["total.allocated"] <= 0 {
		t.Errorf("snapshot over TLS is incomplete: missing %v", snap.Missing)
	}

	pe := probeErr(t, tlsInstance(addr, &handlers.TLS{CAFile: other}), time.Second)
	if pe.Class != handlers.ClassTLS || strings.Contains(pe.Error(), plainPortHint) {
		t.Errorf("wrong CA: class %s, error %v; want tls without the plain-port hint", pe.Class, pe)
	}
}

// TestRealServerThroughTheLimits: what redisbot reads from a real
// redis-server 7.0 fits the default limits, the largest replies
// included, and a reply that does not fit is refused from a real server
// too.
func TestRealServerThroughTheLimits(t *testing.T) {
	srv := redistest.StartT(t)
	ctx := context.Background()
	direct := srv.Client()
	defer direct.Close()
	const keys = 100_000
	if err := redistest.Fill(ctx, direct, "key:", keys, 16, 0); err != nil {
		t.Fatal(err)
	}
	opts, err := probe.ClientOptions(instance(srv.Addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()

	info, err := c.Info(ctx, "everything").Result()
	if err != nil || !strings.Contains(info, "used_memory:") || !strings.Contains(info, "# Commandstats") {
		t.Fatalf("INFO everything: %d bytes, %v", len(info), err)
	}
	stats, err := c.Do(ctx, "MEMORY", "STATS").Slice()
	if err != nil || len(stats) < 40 {
		t.Fatalf("MEMORY STATS: %d fields, %v", len(stats), err)
	}
	if err := c.Do(ctx, "MEMORY", "DOCTOR").Err(); err != nil {
		t.Fatalf("MEMORY DOCTOR: %v", err)
	}
	all, err := c.ConfigGet(ctx, "*").Result()
	if err != nil || len(all) < 100 {
		t.Fatalf("CONFIG GET *: %d settings, %v", len(all), err)
	}
	if _, err := c.Do(ctx, "COMMAND", "DOCS").Result(); err != nil {
		t.Fatalf("COMMAND DOCS (a deep reply of about 500 KB): %v", err)
	}

	for _, count := range []int64{100, 1000, 100_000} {
		seen := map[string]bool{}
		var cursor uint64
		for {
			page, next, err := c.Scan(ctx, cursor, "key:*", count).Result()
			if err != nil {
				t.Fatalf("SCAN COUNT %d: %v", count, err)
			}
			for _, k := range page {
				seen[k] = true
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		if len(seen) != keys {
			t.Errorf("SCAN COUNT %d saw %d keys, want %d", count, len(seen), keys)
		}
	}
	pipe := c.Pipeline()
	usage := make([]*redis.IntCmd, 0, 1000)
	for i := range 1000 {
		k := "key:" + strconv.Itoa(i)
		pipe.Type(ctx, k)
		usage = append(usage, pipe.MemoryUsage(ctx, k))
		pipe.PTTL(ctx, k)
		pipe.StrLen(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("a key scan's pipeline of 4,000 commands: %v", err)
	}
	if n := usage[999].Val(); n <= 0 {
		t.Errorf("MEMORY USAGE = %d", n)
	}

	// A string of DefaultBulk bytes is at the limit; one byte more is
	// refused, and the next command gets a fresh connection.
	big := strings.Repeat("x", resplimit.DefaultBulk)
	if err := direct.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "big").Result(); err != nil || len(got) != len(big) {
		t.Fatalf("GET of a value at the bulk limit: %d bytes, %v", len(got), err)
	}
	if err := direct.Append(ctx, "big", "x").Err(); err != nil {
		t.Fatal(err)
	}
	err = c.Get(ctx, "big").Err()
	if !errors.Is(err, resplimit.ErrLimit) || probe.Classify(err) != handlers.ClassProtocol {
		t.Errorf("GET of the bulk limit + 1: %v, want the bulk limit", err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING after a refused reply: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCerts writes a CA (ca.pem), a certificate it signed for 127.0.0.1
// (server.pem, server-key.pem) and an unrelated CA (other-ca.pem) into dir,
// and returns the paths of the two CAs.
func writeCerts(t *testing.T, dir string) (ca, other string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	selfSigned := func(name string, key *ecdsa.PrivateKey) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	caKey, otherKey, serverKey := newKey(), newKey(), newKey()
	caCert := selfSigned("redisbot test CA", caKey)
	ca = write("ca.pem", "CERTIFICATE", caCert.Raw)
	other = write("other-ca.pem", "CERTIFICATE", selfSigned("another CA", otherKey).Raw)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write("server.pem", "CERTIFICATE", der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	write("server-key.pem", "PRIVATE KEY", keyDER)
	return ca, other
}
