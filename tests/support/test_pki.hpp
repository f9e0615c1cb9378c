#pragma once
// Test certificates made at test time with the openssl command: a test CA,
// a server certificate for 127.0.0.1, client certificates, an unrelated CA.
//
// Callers: the test thread that owns the TempDir (not thread-safe). Each
// certificate is one to three openssl runs (P-256 keys: tens of ms each).
// Everything is written under <dir>/pki; nothing outlives the TempDir.

#include <string>

#include "support/tempdir.hpp"

namespace boxgate::test {

// A certificate and its unencrypted key (PEM files).
struct CertFiles {
  std::string cert;
  std::string key;
};

// A key and a certificate for `subject` ("/CN=..."), valid 2 days, in
// <dir>/pki/<name>.key and .crt. Signed by `ca` with `extensions` (openssl
// x509v3 lines: "subjectAltName=IP:127.0.0.1\n..."); without a CA it is a
// self-signed CA and `extensions` is unused. Throws on failure.
CertFiles make_cert(const TempDir& dir, const std::string& name, const std::string& subject,
                    const CertFiles* ca = nullptr, const std::string& extensions = "");

// The files made by make_test_pki (PEM), all inside the test's directory.
struct TestPki {
  std::string ca_cert;        // the CA the broker's certificate is signed by
  std::string ca_key;
  std::string server_cert;    // CN and subjectAltName 127.0.0.1 (and DNS localhost)
  std::string server_key;
  std::string client_cert;    // CN "boxgate-test-client", signed by ca_cert
  std::string client_key;
  std::string client_key_encrypted;  // the same key, AES-256 under kClientKeyPassphrase
  std::string wrong_ca_cert;  // a CA that signed nothing here
  static constexpr const char* kClientKeyPassphrase = "pki-test-passphrase";

  CertFiles ca() const { return {ca_cert, ca_key}; }
};

// Makes the certificates with openssl in <dir>/pki. Throws on failure.
TestPki make_test_pki(const TempDir& dir);

}  // namespace boxgate::test
