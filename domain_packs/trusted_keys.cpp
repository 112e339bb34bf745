#include "domain_packs/trusted_keys.h"

namespace folio::packs {

namespace {

// The Folio project's release key, as `folio pack keygen` wrote its public half.
constexpr std::string_view kFolioReleaseKey =
    "folio pack public key 1122de7e74f03c7f\n"
    "oLAd8dJqqp/QQY8nClJW+KLPSMDgxrRZcKL0IzPfmGA=\n";

}  // namespace

std::vector<PublicKey> built_in_trusted_keys() { return {parse_public_key_file(kFolioReleaseKey)}; }

}  // namespace folio::packs
