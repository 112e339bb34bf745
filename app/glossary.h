#pragma once
// A domain pack's glossary (domain_packs/<name>/glossary.tsv): its terms and
// abbreviations with what they stand for, for readers of its documents and
// for query expansion, so that a question about "CHF" also finds notes that
// write "congestive heart failure".
//
// The file: UTF-8, one entry a line, `term<TAB>expansion`; an abbreviation
// with several meanings lists them on its line separated by " | "
// ("CP<TAB>chest pain | cerebral palsy"). Blank lines and lines starting
// with '#' are skipped. A term appears once; terms that differ only in case
// are different entries ("mg" milligram, "Mg" magnesium).
//
//   Glossary glossary = Glossary::parse(tsv_text);
//   const GlossaryEntry* entry = glossary.lookup("EBITDA");
//   std::vector<std::string> extra = glossary.expand_query("CHF with SOB?");
//
// Thread rules: a parsed Glossary is immutable; any thread may read it.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace folio::app {

// A line that is not `term<TAB>expansion`, or a term given twice. what():
// "glossary line 12: ..." (1-based).
class GlossaryError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct GlossaryEntry {
    std::string term;
    std::string expansion;              // as written, meanings separated by " | "
    std::vector<std::string> meanings;  // the expansion split at " | "
};

class Glossary {
public:
    // Throws GlossaryError.
    static Glossary parse(std::string_view tsv);

    std::size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }
    const std::vector<GlossaryEntry>& entries() const { return entries_; }  // in file order

    // The entry of exactly this term, else of the term that matches it
    // ignoring ASCII case (the first in file order when several do);
    // nullptr when none.
    const GlossaryEntry* lookup(std::string_view term) const;

    // The meanings of the abbreviations a query writes as whole words
    // (words split at spaces, outer punctuation trimmed: "CHF?" is CHF,
    // "MD&A" and "10-K" stay whole), for a keyword search to add. A query
    // word counts when it is a term as written, or in another case if it is
    // not a plain lowercase word: "Hba1c" and "spo2" are abbreviations,
    // while "all", "or" and "per" are English, not ALL, OR and PER. Only
    // abbreviations expand (terms with a capital, digit, '&', '/' or '.'):
    // a glossary's plain words carry definitions, not synonyms. Meanings
    // the query already holds are left out; each appears once, in query
    // order.
    std::vector<std::string> expand_query(std::string_view query) const;

private:
    std::vector<GlossaryEntry> entries_;
    std::unordered_map<std::string, std::size_t> exact_;   // term → index
    std::unordered_map<std::string, std::size_t> folded_;  // lowercase term → first index
};

}  // namespace folio::app
