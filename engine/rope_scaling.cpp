#include "engine/rope_scaling.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <string>

#include "engine/model_loader.h"

namespace folio::engine {
namespace {

// The pair index at which a frequency makes `turns` full turns within
// original_context positions (YaRN's find_correction_dim; ggml's
// ggml_rope_yarn_corr_dim), fractional.
double pair_making_turns(double turns, int n_rot, float freq_base, int original_context) {
    return n_rot * std::log(original_context / (turns * 2 * std::numbers::pi)) / (2 * std::log(double{freq_base}));
}

}  // namespace

std::vector<double> rope_inverse_frequencies(int n_rot, float freq_base, const RopeScaling& scaling) {
    const int n_pairs = n_rot / 2;
    std::vector<double> inv_freq(static_cast<std::size_t>(n_pairs));
    // Pairs below ramp_low keep their angle under YaRN, pairs above ramp_high
    // are interpolated like linear scaling (ggml_rope_yarn_corr_dims: floor
    // and ceil, as transformers' truncate = True).
    const bool yarn = scaling.type == RopeScalingType::Yarn;
    const double ramp_low = yarn ? std::max(0.0, std::floor(pair_making_turns(scaling.yarn_beta_fast, n_rot, freq_base,
                                                                              scaling.original_context)))
                                 : 0;
    const double ramp_high = yarn ? std::min(n_rot - 1.0, std::ceil(pair_making_turns(scaling.yarn_beta_slow, n_rot,
                                                                                      freq_base, scaling.original_context)))
                                  : 0;
    for (int i = 0; i < n_pairs; ++i) {
        const double extrapolated = std::pow(static_cast<double>(freq_base), -2.0 * i / n_rot);
        const double interpolated = extrapolated / scaling.factor;
        double value = extrapolated;
        if (scaling.type == RopeScalingType::Linear) {
            value = interpolated;
        } else if (yarn) {
            const double ramp = std::clamp((i - ramp_low) / std::max(0.001, ramp_high - ramp_low), 0.0, 1.0);
            const double keep = (1 - ramp) * scaling.yarn_ext_factor;  // share of the unscaled angle
            value = interpolated * (1 - keep) + extrapolated * keep;
        }
        if (!scaling.freq_factors.empty())
            value /= scaling.freq_factors[static_cast<std::size_t>(i)];
        inv_freq[static_cast<std::size_t>(i)] = value;
    }
    return inv_freq;
}

double rope_attention_factor(const RopeScaling& scaling) {
    if (scaling.type != RopeScalingType::Yarn)
        return 1.0;
    if (scaling.attention_factor > 0)
        return scaling.attention_factor;
    return scaling.factor > 1 ? 1.0 + 0.1 * std::log(double{scaling.factor}) : 1.0;
}

RopeScaling read_rope_scaling(const GgufFile& file, const std::string& architecture, int n_rot) {
    const std::string prefix = architecture + ".rope.scaling.";
    RopeScaling scaling;
    const std::string type(file.find_string(prefix + "type").value_or("none"));
    auto required_f32 = [&](const char* key) {
        const std::optional<float> value = file.find_f32(prefix + key);
        if (!value || !(*value > 0))
            throw ModelError(file.source() + ": RoPE scaling \"" + type + "\" needs a positive " + prefix + key);
        return *value;
    };
    if (type == "linear") {
        scaling.type = RopeScalingType::Linear;
        scaling.factor = required_f32("factor");
    } else if (type == "yarn") {
        scaling.type = RopeScalingType::Yarn;
        scaling.factor = required_f32("factor");
        const std::optional<std::uint32_t> original = file.find_u32(prefix + "original_context_length");
        if (!original || *original == 0)
            throw ModelError(file.source() + ": RoPE scaling \"yarn\" needs " + prefix + "original_context_length");
        scaling.original_context = static_cast<int>(*original);
        scaling.yarn_beta_fast = file.get_f32(prefix + "yarn_beta_fast", scaling.yarn_beta_fast);
        scaling.yarn_beta_slow = file.get_f32(prefix + "yarn_beta_slow", scaling.yarn_beta_slow);
        scaling.yarn_ext_factor = file.get_f32(prefix + "yarn_ext_factor", scaling.yarn_ext_factor);
        scaling.attention_factor =
            file.find_f32(prefix + "yarn_attn_factor").value_or(file.get_f32(prefix + "attn_factor", 0.f));
        scaling.yarn_log_multiplier = file.get_f32(prefix + "yarn_log_multiplier", 0.f);
        if (!(scaling.yarn_log_multiplier >= 0) || !std::isfinite(scaling.yarn_log_multiplier))
            throw ModelError(file.source() + ": " + prefix + "yarn_log_multiplier is out of range");
    } else if (type != "none") {
        throw ModelError(file.source() + ": RoPE scaling \"" + type + "\" is not supported (linear, yarn, llama3)");
    }
    if (file.find_tensor("rope_freqs.weight") != nullptr)
        scaling.freq_factors = weight_vector(file, "rope_freqs.weight", n_rot / 2);
    return scaling;
}

}  // namespace folio::engine
