#include "support/test_pki.hpp"

#include <sys/stat.h>

#include "support/process.hpp"

namespace boxgate::test {

CertFiles make_cert(const TempDir& dir, const std::string& name, const std::string& subject, const CertFiles* ca,
                    const std::string& extensions) {
  const std::string pki = dir.file("pki");
  ::mkdir(pki.c_str(), 0700);  // EEXIST after the first
  const std::string base = pki + "/" + name;
  CertFiles out{base + ".crt", base + ".key"};
  if (!ca) {
    run_tool(dir, "openssl-" + name,
             {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
              out.key, "-out", out.cert, "-days", "2", "-subj", subject});
    return out;
  }
  const std::string csr = base + ".csr";
  const std::string ext = dir.write("pki/" + name + ".ext", extensions);
  run_tool(dir, "openssl-req-" + name,
           {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", out.key,
            "-out", csr, "-subj", subject});
  run_tool(dir, "openssl-sign-" + name,
           {"openssl", "x509", "-req", "-in", csr, "-CA", ca->cert, "-CAkey", ca->key, "-CAcreateserial", "-out",
            out.cert, "-days", "2", "-extfile", ext});
  return out;
}

TestPki make_test_pki(const TempDir& dir) {
  const CertFiles ca = make_cert(dir, "ca", "/CN=boxgate test CA");
  const CertFiles wrong_ca = make_cert(dir, "wrong-ca", "/CN=boxgate unrelated CA");
  const CertFiles server = make_cert(dir, "server", "/CN=127.0.0.1", &ca,
                                     "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  const CertFiles client = make_cert(dir, "client", "/CN=boxgate-test-client", &ca, "extendedKeyUsage=clientAuth\n");
  TestPki out;
  out.client_key_encrypted = dir.file("pki/client-encrypted.key");
  run_tool(dir, "openssl-encrypt-client-key",
           {"openssl", "pkey", "-in", client.key, "-aes256", "-passout",
            std::string("pass:") + TestPki::kClientKeyPassphrase, "-out", out.client_key_encrypted});
  out.ca_cert = ca.cert;
  out.ca_key = ca.key;
  out.server_cert = server.cert;
  out.server_key = server.key;
  out.client_cert = client.cert;
  out.client_key = client.key;
  out.wrong_ca_cert = wrong_ca.cert;
  return out;
}

}  // namespace boxgate::test
