#pragma once
// Internal to domain_packs: libsodium's start-up and SHA-256 over streams.

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <sodium.h>

namespace folio::packs {

// libsodium must be initialized before its first use (it picks the fastest
// implementations and seeds its random source); this runs sodium_init once
// even when threads race to the first call. Throws PackError on failure.
void require_sodium();

// SHA-256 fed in pieces, for files hashed while they stream.
class Sha256 {
public:
    Sha256();
    void update(const void* data, std::size_t size);
    void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
    std::string hex();  // 64 lowercase hex digits; call once

private:
    crypto_hash_sha256_state state_;
};

// The SHA-256 of a file from byte `offset` to its end, or of the `size`
// bytes there, as 64 lowercase hex digits. Throws PackError (field: the path)
// when it cannot be read that far.
std::string sha256_of_file(const std::filesystem::path& path, std::uint64_t offset = 0,
                           std::optional<std::uint64_t> size = std::nullopt);

}  // namespace folio::packs
