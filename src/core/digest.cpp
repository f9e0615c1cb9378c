#include "boxgate/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <stdexcept>

namespace boxgate::digest {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The algorithm is fetched once: OpenSSL 3 looks EVP_sha256() up in its
// provider tables on every EVP_Digest() call (thousands of instructions,
// several times the digest of a small command body), and a fetched EVP_MD is
// used as is. The context is reused per thread for the same reason.
template <std::size_t N>
std::array<unsigned char, N> digest_of(const EVP_MD* md, std::string_view bytes, const char* name) {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::array<unsigned char, N> out{};
  unsigned int size = 0;
  if (!md || !ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &size) != 1 || size != out.size()) {
    throw std::runtime_error(std::string(name) + " failed (libcrypto)");
  }
  return out;
}

}  // namespace

Sha256 sha256(std::string_view bytes) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return digest_of<32>(md, bytes, "SHA-256");
}

Sha1 sha1(std::string_view bytes) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return digest_of<20>(md, bytes, "SHA-1");
}

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

bool equal(const Sha256& a, const Sha256& b) noexcept { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

std::optional<Sha256> parse_sha256_hex(std::string_view hex) {
  Sha256 out{};
  if (hex.size() != out.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return out;
}

Sha256 hmac_sha256(std::string_view key, std::string_view message) {
  Sha256 out{};
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(), &size) ||
      size != out.size()) {
    throw std::runtime_error("HMAC-SHA256 failed (libcrypto)");
  }
  return out;
}

std::string base64(std::span<const unsigned char> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64(std::string_view bytes) {
  return base64(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

std::optional<std::string> from_base64(std::string_view text) {
  if (text.empty()) return std::string();
  if (text.size() % 4 != 0) return std::nullopt;
  // Padding only at the end: one or two '='. EVP_DecodeBlock alone takes
  // "Zg==Zg==" or "====" and decodes them to bytes no other decoder would.
  std::size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  for (std::size_t i = 0; i < text.size() - pad; ++i) {
    char c = text[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes: drop them.
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

}  // namespace boxgate::digest
