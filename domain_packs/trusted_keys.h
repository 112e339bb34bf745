#pragma once
// The pack-signing keys every Folio trusts: the Folio project's release key.
// Its secret half never enters this repository. Organizations sign their own
// packs with a key made by `folio pack keygen`, which each user adds with
// `folio pack trust KEY.pub`.

#include <vector>

#include "domain_packs/pack_signature.h"

namespace folio::packs {

std::vector<PublicKey> built_in_trusted_keys();

}  // namespace folio::packs
