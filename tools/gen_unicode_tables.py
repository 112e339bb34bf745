#!/usr/bin/env python3
"""Writes engine/unicode_data.cpp: the Unicode general category of every code
point as a table of runs, and the White_Space property, for the tokenizer's
pre-tokenizers (\\p{L}, \\p{N}, \\s in the Hugging Face split regexes); and
engine/unicode_bert_fold.cpp: what BERT's uncased normalization makes of each
code point (canonical decomposition less nonspacing marks, lowercased).

The categories come from Python's unicodedata, so the table's Unicode version
is that of the Python that runs this script (printed into the file).
Run from the repository root:  python3 tools/gen_unicode_tables.py
"""
import pathlib
import sys
import unicodedata

# Order matches enum class GeneralCategory in engine/unicode_data.h.
CATEGORIES = [
    "Cn", "Cc", "Cf", "Co", "Cs",
    "Ll", "Lm", "Lo", "Lt", "Lu",
    "Mc", "Me", "Mn",
    "Nd", "Nl", "No",
    "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps",
    "Sc", "Sk", "Sm", "So",
    "Zl", "Zp", "Zs",
]

# White_Space from the UCD's PropList.txt (unchanged since Unicode 6.3, which
# dropped U+180E). unicodedata does not expose the property, and str.isspace()
# differs from it (it also accepts U+001C..U+001F).
WHITE_SPACE = [(0x0009, 0x000D), (0x0020, 0x0020), (0x0085, 0x0085), (0x00A0, 0x00A0),
               (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F),
               (0x205F, 0x205F), (0x3000, 0x3000)]


LOOKUP_FUNCTIONS = """
namespace folio::engine {

namespace {
// The Basic Multilingual Plane, where nearly all text lies, as a direct table
// (64 KiB, built on first use); the other planes are searched.
const std::array<GeneralCategory, 0x10000>& bmp_categories() {
    static const std::array<GeneralCategory, 0x10000> table = [] {
        std::array<GeneralCategory, 0x10000> categories{};
        for (std::size_t run = 0; run < unicode_tables::kCategoryRunCount; ++run) {
            const std::uint32_t first = unicode_tables::kCategoryRuns[run].first;
            if (first >= 0x10000)
                break;
            const std::uint32_t end = run + 1 < unicode_tables::kCategoryRunCount
                                          ? std::min<std::uint32_t>(unicode_tables::kCategoryRuns[run + 1].first, 0x10000)
                                          : 0x10000;
            std::fill(categories.begin() + first, categories.begin() + end,
                      unicode_tables::kCategoryRuns[run].category);
        }
        return categories;
    }();
    return table;
}
}  // namespace

GeneralCategory general_category(std::uint32_t code_point) {
    if (code_point < 0x10000)
        return bmp_categories()[code_point];
    if (code_point > 0x10FFFF)
        return GeneralCategory::Cn;
    const auto* runs_end = unicode_tables::kCategoryRuns + unicode_tables::kCategoryRunCount;
    const auto* after = std::upper_bound(
        unicode_tables::kCategoryRuns, runs_end, code_point,
        [](std::uint32_t value, const unicode_tables::CategoryRun& run) { return value < run.first; });
    return (after - 1)->category;
}

bool is_white_space(std::uint32_t code_point) {
    for (std::size_t i = 0; i < unicode_tables::kWhiteSpaceRangeCount; ++i) {
        if (code_point < unicode_tables::kWhiteSpaceRanges[i].first)
            return false;
        if (code_point <= unicode_tables::kWhiteSpaceRanges[i].last)
            return true;
    }
    return false;
}

}  // namespace folio::engine"""


def category_runs():
    runs = []
    previous = None
    for code_point in range(0x110000):
        category = unicodedata.category(chr(code_point))
        if category != previous:
            runs.append((code_point, category))
            previous = category
    return runs


BERT_FOLD_LOOKUP = """
namespace folio::engine {

std::string_view bert_uncased_fold(std::uint32_t code_point) {
    const auto* end = unicode_tables::kBertFolds + unicode_tables::kBertFoldCount;
    const auto* found = std::lower_bound(
        unicode_tables::kBertFolds, end, code_point,
        [](const unicode_tables::BertFold& fold, std::uint32_t value) { return fold.code_point < value; });
    if (found == end || found->code_point != code_point)
        return {};
    return found->utf8;
}

}  // namespace folio::engine"""


def is_hangul_syllable(code_point):
    return 0xAC00 <= code_point <= 0xD7A3


def bert_folds():
    """tokenizers' BertNormalizer strip_accents then lowercase, one code
    point at a time: NFD, nonspacing marks dropped, each character's full
    lowercase mapping. Code points it keeps, nonspacing marks (dropped) and
    Hangul syllables (decomposed by arithmetic) are left to the lookup's caller."""
    folds = []
    for code_point in range(0x110000):
        character = chr(code_point)
        if unicodedata.category(character) in ("Mn", "Cs") or is_hangul_syllable(code_point):
            continue
        stripped = [c for c in unicodedata.normalize("NFD", character) if unicodedata.category(c) != "Mn"]
        folded = "".join(c.lower() for c in stripped)
        if folded != character:
            folds.append((code_point, folded))
    return folds


def c_string(text):
    return '"' + "".join(f"\\x{byte:02X}" for byte in text.encode("utf-8")) + '"'


def generated_file_header():
    """The opening lines both generated files share."""
    return [
        "// Generated by tools/gen_unicode_tables.py from Python "
        f"{sys.version_info.major}.{sys.version_info.minor}'s unicodedata, "
        f"Unicode {unicodedata.unidata_version}. Do not edit.",
        '#include "engine/unicode_data.h"',
        "",
        "#include <algorithm>",
    ]


def write_bert_folds(root):
    folds = bert_folds()
    lines = generated_file_header() + [
        "",
        "namespace folio::engine::unicode_tables {",
        "",
        "// By code point.",
        f"const BertFold kBertFolds[{len(folds)}] = {{",
    ]
    for code_point, folded in folds:
        lines.append(f"    {{0x{code_point:X}, {c_string(folded)}}},")
    lines.append("};")
    lines.append(f"const std::size_t kBertFoldCount = {len(folds)};")
    lines.append("")
    lines.append("}  // namespace folio::engine::unicode_tables")
    lines.append(BERT_FOLD_LOOKUP)
    (root / "engine" / "unicode_bert_fold.cpp").write_text("\n".join(lines) + "\n")
    print(f"{len(folds)} BERT folds")


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    write_bert_folds(root)
    runs = category_runs()
    lines = generated_file_header() + [
        "#include <array>",
        "",
        "namespace folio::engine::unicode_tables {",
        "",
        "using enum GeneralCategory;",
        "",
        f"const char* const kUnicodeVersion = \"{unicodedata.unidata_version}\";",
        "",
        "// Each run starts at `first` and ends where the next begins; the last ends at U+10FFFF.",
        f"const CategoryRun kCategoryRuns[{len(runs)}] = {{",
    ]
    row = []
    for first, category in runs:
        row.append(f"{{0x{first:X},{category}}}")
        if len(row) == 8:
            lines.append("    " + ", ".join(row) + ",")
            row = []
    if row:
        lines.append("    " + ", ".join(row) + ",")
    lines.append("};")
    lines.append(f"const std::size_t kCategoryRunCount = {len(runs)};")
    lines.append("")
    lines.append(f"const CodePointRange kWhiteSpaceRanges[{len(WHITE_SPACE)}] = {{")
    lines.append("    " + ", ".join(f"{{0x{a:04X},0x{b:04X}}}" for a, b in WHITE_SPACE) + ",")
    lines.append("};")
    lines.append(f"const std::size_t kWhiteSpaceRangeCount = {len(WHITE_SPACE)};")
    lines.append("")
    lines.append("}  // namespace folio::engine::unicode_tables")
    lines.append(LOOKUP_FUNCTIONS)
    (root / "engine" / "unicode_data.cpp").write_text("\n".join(lines) + "\n")
    print(f"{len(runs)} category runs, Unicode {unicodedata.unidata_version}")


if __name__ == "__main__":
    main()
