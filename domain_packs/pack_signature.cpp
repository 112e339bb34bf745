#include "domain_packs/pack_signature.h"

#include "domain_packs/sodium.h"

#include <algorithm>

#include <sodium.h>

namespace folio::packs {

static_assert(kPublicKeyBytes == crypto_sign_PUBLICKEYBYTES);
static_assert(kSecretKeyBytes == crypto_sign_SECRETKEYBYTES);
static_assert(kEd25519SignatureBytes == crypto_sign_BYTES);
static_assert(kKeyIdBytes <= crypto_hash_sha256_BYTES);

namespace {

constexpr std::string_view kPublicKeyHeader = "folio pack public key ";
constexpr std::string_view kSecretKeyHeader = "folio pack secret key ";

template <std::size_t N>
std::string to_base64(const std::array<std::uint8_t, N>& bytes) {
    std::string text(sodium_base64_ENCODED_LEN(N, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(text.data(), text.size(), bytes.data(), N, sodium_base64_VARIANT_ORIGINAL);
    text.resize(text.size() - 1);  // the encoder's terminating NUL
    return text;
}

template <std::size_t N>
std::array<std::uint8_t, N> from_base64(std::string_view text, const std::string& field) {
    std::array<std::uint8_t, N> bytes{};
    std::size_t decoded_length = 0;
    const char* end = nullptr;
    const bool decoded = sodium_base642bin(bytes.data(), N, text.data(), text.size(), nullptr, &decoded_length,
                                           &end, sodium_base64_VARIANT_ORIGINAL) == 0;
    if (!decoded || end != text.data() + text.size() || decoded_length != N) {
        sodium_memzero(bytes.data(), N);
        throw PackError(field, "the key line is not base64 of " + std::to_string(N) + " bytes");
    }
    return bytes;
}

std::string_view trim(std::string_view text) {
    constexpr std::string_view kWhitespace = " \t\r\n";
    const std::size_t first = text.find_first_not_of(kWhitespace);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(kWhitespace) - first + 1);
}

struct KeyFileLines {
    std::string_view key_id;  // what the header says, not yet checked
    std::string_view base64;
};

// Splits key file text after checking that its header is the expected kind;
// a header of the other kind gets wrong_kind_problem.
KeyFileLines split_key_file(std::string_view text, std::string_view expected_header, std::string_view other_header,
                            const std::string& wrong_kind_problem, const std::string& field) {
    text = trim(text);
    const std::size_t newline = text.find('\n');
    const std::string_view header = trim(text.substr(0, newline));
    if (header.starts_with(other_header)) throw PackError(field, wrong_kind_problem);
    if (!header.starts_with(expected_header))
        throw PackError(field, "does not start with the line \"" + std::string(trim(expected_header)) + " <key id>\"");
    if (newline == std::string_view::npos) throw PackError(field, "has no key line after its header");
    const std::string_view base64 = trim(text.substr(newline + 1));
    if (base64.find('\n') != std::string_view::npos) throw PackError(field, "has more than two lines");
    return {header.substr(expected_header.size()), base64};
}

void require_matching_id(const PublicKey& key, std::string_view header_id, const std::string& field) {
    const std::string actual = key_id_hex(key.id());
    if (header_id != actual) {
        // The header is untrusted text: show a short, printable part of it.
        std::string shown;
        for (const char c : header_id.substr(0, 2 * kKeyIdBytes + 1))
            shown += c >= 0x20 && c < 0x7f && c != '"' ? c : '?';
        throw PackError(field, "holds key " + actual + ", not the key \"" + shown + "\" its header names");
    }
}

}  // namespace

std::string key_id_hex(const KeyId& id) {
    static constexpr char kHexDigits[] = "0123456789abcdef";
    std::string hex;
    for (const std::uint8_t byte : id) {
        hex += kHexDigits[byte >> 4];
        hex += kHexDigits[byte & 0xf];
    }
    return hex;
}

KeyId PublicKey::id() const {
    require_sodium();
    std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256(digest.data(), bytes.data(), bytes.size());
    KeyId id{};
    std::copy_n(digest.begin(), kKeyIdBytes, id.begin());
    return id;
}

SecretKey::~SecretKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

PublicKey SecretKey::public_key() const {
    PublicKey key;
    std::copy(bytes_.end() - kPublicKeyBytes, bytes_.end(), key.bytes.begin());
    return key;
}

KeyPair generate_keypair() {
    require_sodium();
    PublicKey public_key;
    std::array<std::uint8_t, kSecretKeyBytes> secret{};
    crypto_sign_keypair(public_key.bytes.data(), secret.data());
    KeyPair pair{public_key, SecretKey(secret)};
    sodium_memzero(secret.data(), secret.size());
    return pair;
}

std::string sign_manifest(std::string_view manifest_bytes, const SecretKey& secret_key) {
    require_sodium();
    std::array<std::uint8_t, kEd25519SignatureBytes> signature{};
    crypto_sign_detached(signature.data(), nullptr, reinterpret_cast<const unsigned char*>(manifest_bytes.data()),
                         manifest_bytes.size(), secret_key.bytes().data());
    const KeyId id = secret_key.public_key().id();
    std::string encoded(kSignatureAlgorithmTag);
    encoded.append(id.begin(), id.end());
    encoded.append(signature.begin(), signature.end());
    return encoded;
}

KeyId verify_manifest(std::string_view manifest_bytes, std::string_view encoded_signature,
                      std::span<const PublicKey> trusted_public_keys) {
    require_sodium();
    if (encoded_signature.size() != kEncodedSignatureBytes)
        throw PackError("signature", "is " + std::to_string(encoded_signature.size()) + " bytes, expected " +
                                         std::to_string(kEncodedSignatureBytes));
    if (!encoded_signature.starts_with(kSignatureAlgorithmTag))
        throw PackError("signature", "is not an Ed25519 signature (unknown algorithm tag)");
    KeyId id{};
    const std::string_view id_bytes = encoded_signature.substr(kSignatureAlgorithmTag.size(), kKeyIdBytes);
    std::copy(id_bytes.begin(), id_bytes.end(), id.begin());
    const auto* signature =
        reinterpret_cast<const unsigned char*>(encoded_signature.data() + kSignatureAlgorithmTag.size() + kKeyIdBytes);

    bool key_known = false;
    for (const PublicKey& key : trusted_public_keys) {
        // 64-bit ids can collide, so every trusted key with this id is tried.
        if (key.id() != id) continue;
        key_known = true;
        if (crypto_sign_verify_detached(signature, reinterpret_cast<const unsigned char*>(manifest_bytes.data()),
                                        manifest_bytes.size(), key.bytes.data()) == 0)
            return id;
    }
    if (!key_known) throw PackError("signature", "signed by an unknown key " + key_id_hex(id));
    throw PackError("signature", "does not verify with trusted key " + key_id_hex(id));
}

std::string public_key_file_text(const PublicKey& key) {
    return std::string(kPublicKeyHeader) + key_id_hex(key.id()) + "\n" + to_base64(key.bytes) + "\n";
}

std::string secret_key_file_text(const SecretKey& key) {
    return std::string(kSecretKeyHeader) + key_id_hex(key.public_key().id()) + "\n" + to_base64(key.bytes()) + "\n";
}

PublicKey parse_public_key_file(std::string_view text) {
    const std::string field = "public key file";
    const KeyFileLines lines = split_key_file(text, kPublicKeyHeader, kSecretKeyHeader,
                                              "this is a secret key file; give the public key file here", field);
    PublicKey key;
    key.bytes = from_base64<kPublicKeyBytes>(lines.base64, field);
    require_sodium();
    require_matching_id(key, lines.key_id, field);
    return key;
}

SecretKey parse_secret_key_file(std::string_view text) {
    const std::string field = "secret key file";
    const KeyFileLines lines = split_key_file(text, kSecretKeyHeader, kPublicKeyHeader,
                                              "this is a public key file; give the secret key file here", field);
    std::array<std::uint8_t, kSecretKeyBytes> bytes = from_base64<kSecretKeyBytes>(lines.base64, field);
    const SecretKey key(bytes);
    sodium_memzero(bytes.data(), bytes.size());

    require_sodium();
    std::array<std::uint8_t, kPublicKeyBytes> derived_public{};
    std::array<std::uint8_t, kSecretKeyBytes> derived_secret{};
    crypto_sign_seed_keypair(derived_public.data(), derived_secret.data(), key.bytes().data());
    sodium_memzero(derived_secret.data(), derived_secret.size());
    if (derived_public != key.public_key().bytes)
        throw PackError(field, "its public half does not match its seed; the file is damaged");
    require_matching_id(key.public_key(), lines.key_id, field);
    return key;
}

}  // namespace folio::packs
