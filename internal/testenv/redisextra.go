package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RedisTLS is a private redis-server that speaks only TLS, with a
// certificate for localhost signed by a throwaway CA.
type RedisTLS struct {
	Port   int
	CAFile string // PEM of the CA; point SSL_CERT_FILE at it to trust it
}

// URL is the rediss:// URL of the server.
func (r *RedisTLS) URL() string { return fmt.Sprintf("rediss://localhost:%d", r.Port) }

// StartRedisTLS starts a TLS-only Redis server.
func StartRedisTLS(t testing.TB) *RedisTLS {
	t.Helper()
	bin := lookBinary(t, "redis-server", nil, installRedis)
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestCerts(t, dir)
	r := &RedisTLS{Port: FreePort(t), CAFile: caFile}
	StartProcess(t, "redis-server-tls:"+strconv.Itoa(r.Port), bin, []string{
		"--port", "0", "--tls-port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no", "--dir", dir, "--save", "", "--appendonly", "no",
	}, nil)
	WaitForPort(t, fmt.Sprintf("127.0.0.1:%d", r.Port), 10*time.Second)
	return r
}

// testCA is one throwaway CA per test process: Go reads SSL_CERT_FILE once
// per process, so every TLS server a process starts must chain to the CA it
// saw first.
var testCA struct {
	once sync.Once
	der  []byte
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	err  error
}

func loadTestCA() error {
	testCA.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			testCA.err = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "azen test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			testCA.err = err
			return
		}
		testCA.der, testCA.key = der, key
		testCA.cert, testCA.err = x509.ParseCertificate(der)
	})
	return testCA.err
}

// writeTestCerts writes the process's CA and a localhost/127.0.0.1
// certificate it signed.
func writeTestCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	if err := loadTestCA(); err != nil {
		t.Fatal(err)
	}
	ca, caKey, caDER := testCA.cert, testCA.key, testCA.der
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("redis.pem", "CERTIFICATE", leafDER), write("redis.key", "EC PRIVATE KEY", keyDER)
}

// RedisSentinel is a private Sentinel watching one master under the name
// "azen".
type RedisSentinel struct {
	Port   int
	Master *Redis
}

// URL is the Sentinel form of AZEN_REDIS_URL.
func (s *RedisSentinel) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d?master_name=azen", s.Port)
}

// StartRedisSentinel starts a Redis master and one Sentinel watching it.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	master := StartRedis(t)
	bin := lookBinary(t, "redis-server", nil, installRedis)
	s := &RedisSentinel{Port: FreePort(t), Master: master}
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\nsentinel monitor azen 127.0.0.1 %d 1\nsentinel down-after-milliseconds azen 2000\n", s.Port, master.Port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	StartProcess(t, "redis-sentinel:"+strconv.Itoa(s.Port), bin, []string{conf, "--sentinel"}, nil)
	WaitForPort(t, fmt.Sprintf("127.0.0.1:%d", s.Port), 10*time.Second)
	return s
}
