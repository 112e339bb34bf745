#pragma once
#include <bit>
#include <cstdint>

// Scalar conversions between float and the two 16-bit float formats that
// GGUF weights and ggml block scales use:
//   f16  (IEEE binary16): sign | 5-bit exponent (bias 15) | 10-bit mantissa
//   bf16 (bfloat16):      the top 16 bits of a binary32
// Rounding is to nearest, ties to even, as F16C's vcvtps2ph does, so the
// scalar and SIMD kernels produce the same bits. The arithmetic is integer
// only: no subnormal float operand is ever formed, so a flush-to-zero /
// denormals-are-zero FPU mode cannot change a result.

namespace folio::engine {

inline float fp16_to_fp32(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    const std::uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F)  // infinity or NaN, payload kept
        return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
    if (exponent != 0)     // rebias 15 -> 127
        return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
    if (mantissa == 0)
        return std::bit_cast<float>(sign);
    // Subnormal: mantissa * 2^-24. Normalize so the leading 1 lands on bit 10.
    const int shift = std::countl_zero(mantissa) - 21;  // 1..10
    const std::uint32_t normalized = (mantissa << shift) & 0x3FFu;
    const std::uint32_t float_exponent = static_cast<std::uint32_t>(113 - shift);
    return std::bit_cast<float>(sign | (float_exponent << 23) | (normalized << 13));
}

inline std::uint16_t fp32_to_fp16(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
    const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u)  // NaN: quieted, top payload bits kept (as vcvtps2ph)
        return static_cast<std::uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
    if (magnitude >= 0x477FF000u)  // >= 65520 (halfway past 65504, the largest f16): infinity
        return static_cast<std::uint16_t>(sign | 0x7C00u);
    if (magnitude >= 0x38800000u) {  // >= 2^-14: a normal f16
        const std::uint32_t round_bit_and_sticky = 0xFFFu + ((magnitude >> 13) & 1u);
        return static_cast<std::uint16_t>(sign | ((magnitude + round_bit_and_sticky - 0x38000000u) >> 13));
    }
    // Subnormal f16 (or zero): the value in units of 2^-24, rounded.
    const std::uint32_t float_exponent = magnitude >> 23;
    const int shift = 126 - static_cast<int>(float_exponent);  // >= 14
    if (shift > 24)
        return sign;
    const std::uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
    std::uint32_t units = significand >> shift;
    const std::uint32_t remainder = significand & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (units & 1u)))
        ++units;
    return static_cast<std::uint16_t>(sign | units);
}

inline float bf16_to_fp32(std::uint16_t b) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

inline std::uint16_t fp32_to_bf16(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u)  // NaN: quieted
        return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
    return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace folio::engine
