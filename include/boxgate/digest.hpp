#pragma once
// Message digests and their hex form: SHA-256 (API token hashes, the command
// record's body hash) and SHA-1 (the name Redis gives a Lua script for
// EVALSHA). Taken from libcrypto (OpenSSL) rather than written here: a
// primitive that must be exactly right comes from a vetted library.
//
// Pure functions; any thread (each thread keeps its own digest context).
// sha256() and sha1() throw std::runtime_error when libcrypto fails, which a
// working installation never does.

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace boxgate::digest {

using Sha256 = std::array<unsigned char, 32>;
using Sha1 = std::array<unsigned char, 20>;

Sha256 sha256(std::string_view bytes);
Sha1 sha1(std::string_view bytes);

// Two lowercase hex digits per byte.
std::string to_hex(std::span<const unsigned char> bytes);

// Equal digests, compared in constant time (a token check must not tell a
// caller how many leading bytes of a hash it guessed).
bool equal(const Sha256& a, const Sha256& b) noexcept;

// HMAC-SHA256 of `message` under `key` (webhook signatures).
Sha256 hmac_sha256(std::string_view key, std::string_view message);

// Standard base64 (RFC 4648, with padding).
std::string base64(std::span<const unsigned char> bytes);
std::string base64(std::string_view bytes);
// nullopt when `text` is not padded standard base64.
std::optional<std::string> from_base64(std::string_view text);

// 64 hex digits (either case) as a SHA-256; nullopt otherwise.
std::optional<Sha256> parse_sha256_hex(std::string_view hex);

}  // namespace boxgate::digest
