#include "domain_packs/sodium.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <vector>

#include "domain_packs/pack_manifest.h"

namespace folio::packs {

void require_sodium() {
    static const int status = sodium_init();
    if (status < 0) throw PackError("libsodium", "could not be initialized");
}

Sha256::Sha256() {
    require_sodium();
    crypto_hash_sha256_init(&state_);
}

void Sha256::update(const void* data, std::size_t size) {
    crypto_hash_sha256_update(&state_, static_cast<const unsigned char*>(data), size);
}

std::string Sha256::hex() {
    std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256_final(&state_, digest.data());
    std::string text(2 * digest.size() + 1, '\0');
    sodium_bin2hex(text.data(), text.size(), digest.data(), digest.size());
    text.pop_back();
    return text;
}

std::string sha256_of_file(const std::filesystem::path& path, std::uint64_t offset,
                           std::optional<std::uint64_t> size) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw PackError(path.string(), "cannot be read");
    in.seekg(static_cast<std::streamoff>(offset));
    Sha256 hash;
    std::vector<char> buffer(1 << 16);
    std::uint64_t remaining = size.value_or(std::numeric_limits<std::uint64_t>::max());
    while (remaining > 0 && in) {
        in.read(buffer.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(remaining, buffer.size())));
        hash.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
        remaining -= static_cast<std::uint64_t>(in.gcount());
    }
    if (in.bad() || (size && remaining != 0)) throw PackError(path.string(), "could not be read to the end");
    return hash.hex();
}

}  // namespace folio::packs
