//go:build unix

package probe

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// writePEM writes one PEM block to dir/name and returns its path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfSigned writes a self-signed certificate, its key and a key that
// matches nothing.
func selfSigned(t *testing.T, dir string) (cert, key, otherKey string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, other := newKey(), newKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redisbot test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	oder, err := x509.MarshalPKCS8PrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, "cert.pem", "CERTIFICATE", der),
		writePEM(t, dir, "key.pem", "PRIVATE KEY", kder),
		writePEM(t, dir, "other-key.pem", "PRIVATE KEY", oder)
}

// TestTLSConfigFiles: TLS files are read as the config loader reads them, so
// a file swapped for a FIFO or /dev/zero after start-up is an error at once,
// not a hang or a read without end.
func TestTLSConfigFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key, otherKey := selfSigned(t, dir)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	cfg, err := TLSConfig(&handlers.TLS{CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "redis.internal"})
	if err != nil {
		t.Fatalf("TLSConfig: %v", err)
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "redis.internal" {
		t.Errorf("TLSConfig = %+v", cfg)
	}

	for _, tc := range []struct {
		tls  handlers.TLS
		want string
	}{
		{handlers.TLS{CAFile: "/dev/zero"}, "tls ca_file: /dev/zero is not a regular file (a character device)"},
		{handlers.TLS{CAFile: fifo}, "tls ca_file: " + fifo + " is not a regular file (a FIFO)"},
		{handlers.TLS{CAFile: key}, "tls ca_file " + key + ": no certificates found"},
		{handlers.TLS{CertFile: fifo, KeyFile: key}, "tls cert_file: " + fifo + " is not a regular file (a FIFO)"},
		{handlers.TLS{CertFile: cert, KeyFile: "/dev/zero"}, "tls key_file: /dev/zero is not a regular file (a character device)"},
		{handlers.TLS{CertFile: cert, KeyFile: otherKey}, "tls cert_file/key_file: tls: private key does not match public key"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := TLSConfig(&tc.tls)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != tc.want {
				t.Errorf("TLSConfig(%+v) error = %v, want %q", tc.tls, err, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("TLSConfig(%+v) still running after 5s", tc.tls)
		}
	}
}
