#pragma once
// Ed25519 signatures (libsodium) over a pack manifest's canonical bytes, and
// the key files `folio pack keygen` writes.
//
// Key id: the first 8 bytes of SHA-256 of the 32-byte public key, written as
// 16 lowercase hex digits; for a public key file:
//   tail -1 KEY.pub | base64 -d | sha256sum | cut -c1-16
//
// Encoded signature, 74 bytes:
//   "Ed" | key id (8 bytes) | Ed25519 detached signature (64 bytes)
// The key id says which trusted key to check against, so a pack signed by a
// key this Folio does not trust is refused by name rather than with a bare
// "does not verify". It is not covered by the signature and need not be:
// a wrong id only selects a key that then fails to verify.
//
// Key files, text, two lines; the header keeps a secret key from being taken
// for a public one and names the key:
//   folio pack public key <key id>        folio pack secret key <key id>
//   <base64 of the 32-byte public key>    <base64 of the 64-byte secret key>
// The secret key is libsodium's (32-byte seed | 32-byte public key).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "domain_packs/pack_manifest.h"

namespace folio::packs {

inline constexpr std::size_t kKeyIdBytes = 8;
inline constexpr std::size_t kPublicKeyBytes = 32;   // crypto_sign_PUBLICKEYBYTES
inline constexpr std::size_t kSecretKeyBytes = 64;   // crypto_sign_SECRETKEYBYTES
inline constexpr std::size_t kEd25519SignatureBytes = 64;  // crypto_sign_BYTES
inline constexpr std::string_view kSignatureAlgorithmTag = "Ed";
inline constexpr std::size_t kEncodedSignatureBytes =
    kSignatureAlgorithmTag.size() + kKeyIdBytes + kEd25519SignatureBytes;

using KeyId = std::array<std::uint8_t, kKeyIdBytes>;

std::string key_id_hex(const KeyId& id);

struct PublicKey {
    std::array<std::uint8_t, kPublicKeyBytes> bytes{};

    KeyId id() const;
    bool operator==(const PublicKey&) const = default;
};

// Wiped from memory when destroyed.
class SecretKey {
public:
    explicit SecretKey(const std::array<std::uint8_t, kSecretKeyBytes>& bytes) : bytes_(bytes) {}
    SecretKey(const SecretKey&) = default;
    SecretKey& operator=(const SecretKey&) = default;
    ~SecretKey();

    const std::array<std::uint8_t, kSecretKeyBytes>& bytes() const { return bytes_; }
    PublicKey public_key() const;

private:
    std::array<std::uint8_t, kSecretKeyBytes> bytes_;
};

struct KeyPair {
    PublicKey public_key;
    SecretKey secret_key;
};

// A fresh key pair from libsodium's random source. Throws PackError if
// libsodium cannot start.
KeyPair generate_keypair();

// The encoded signature (kEncodedSignatureBytes bytes) of manifest_bytes,
// which should be canonical_manifest_json's output.
std::string sign_manifest(std::string_view manifest_bytes, const SecretKey& secret_key);

// Checks an encoded signature of manifest_bytes against the trusted keys and
// returns the id of the key that verified. Throws PackError (field
// "signature") when the encoding is wrong, the key id is not among the
// trusted keys ("signed by an unknown key <id>"), or the signature does not
// verify. Call it before parsing anything the manifest describes.
KeyId verify_manifest(std::string_view manifest_bytes, std::string_view encoded_signature,
                      std::span<const PublicKey> trusted_public_keys);

// Key file text (see above), with a trailing newline. The secret key text is
// as sensitive as the key: write it to a file only its owner can read.
std::string public_key_file_text(const PublicKey& key);
std::string secret_key_file_text(const SecretKey& key);

// Parse key file text; surrounding whitespace and CRLF line ends are
// accepted. Throw PackError (field "public key file" / "secret key file")
// when the header is not the expected one (naming a key of the other kind
// as such), the base64 or length is wrong, or the key does not match the id
// in the header; a secret key must also hold the public key its seed makes.
PublicKey parse_public_key_file(std::string_view text);
SecretKey parse_secret_key_file(std::string_view text);

}  // namespace folio::packs
