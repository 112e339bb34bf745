#pragma once
// Extraction: a document's fields as JSON that validates against a JSON
// Schema, each value located in the document (page and span) or marked
// ungrounded, with normalized forms (ISO dates, money with currency and
// scale, percentages, lab values with units), and the findings of the
// pack's validators (pack_validators.h).
//
//   JsonSchema schema = JsonSchema::parse(json::parse(schema_text));
//   Extractor extractor(chat_model, schema, {});
//   ExtractionRecord record = extractor.extract(library, doc_id);
//
// Thread rules: as ChatModel's (one thread at a time).

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/chat_model.h"
#include "app/json_schema.h"
#include "app/library.h"
#include "app/pack_validators.h"

namespace folio::app {

// One leaf value of a record: where it is in the record, what the model
// wrote, its normalized form and where the document says it.
struct ExtractedValue {
    std::string pointer;             // JSON pointer into ExtractionRecord::data, e.g. "/medications/0/name"
    nlohmann::json value;            // as extracted
    nlohmann::json normalized;       // value_normalize.h's form; null when it has none
    bool grounded = false;           // found in the document
    int page = 0;                    // 1-based, when grounded
    std::size_t begin = 0, end = 0;  // byte span in that page's stored text
    std::string quote;               // the page text at the span
};

struct ExtractionRecord {
    std::int64_t doc_id = 0;
    std::string path;                 // the document's file
    nlohmann::json data;              // the extracted object; validates against the schema
    std::vector<ExtractedValue> values;
    int grounded = 0, ungrounded = 0;  // over values whose value is not null
    std::vector<ValidationIssue> validation;  // the validators' findings; the data is kept as extracted
    int pages = 0;                    // the document's
    int pages_read = 0;               // shown to the model: all, or those that fit its context: key pages, then by relevance
    std::string error;                // one line when the record could not be extracted (data is then null)
    double seconds = 0;
    engine::GenerationTimings timings;
};

// Pages an extraction shows first when a document has them (a pack's
// "key_pages": a filing's income statement, balance sheet and cash-flow
// statement). The page chosen for one is the page that holds most of its
// terms (line items such as "total assets"), two more for a title line that
// ends with one of its headings ("CONSOLIDATED BALANCE SHEETS (In millions)";
// not "Consolidated Balance Sheet Data"); the most figures break a tie.
// Case, curly apostrophes and runs of spaces do not matter.
//
// A key page's line items are fields read straight from its table rows, not
// asked of the model: the row whose label is one of the item's labels (the
// first label that some row has wins), in the column of the latest period
// the table's header names (its first column when the header names no
// year). A row under a heading row reads as both ("Earnings per share:",
// then "Diluted | $5.61 | ..." is also "earnings per share diluted").
// Labels compare as lower-case words: "Total shareholders' equity
// (deficit)" is "total shareholders equity deficit"; "*" in a label stands
// for any words ("diluted earnings per common share * net income"). The
// value is the cell as printed, less "$": "365,817", "(6,003.4)" (a number
// as parse_decimal reads it, commas in groups of three). When the document has the
// key page but no row for an item, the field is null (where the schema
// allows it): the page does not print it. Without the page the model's
// value stands.
struct LineItem {
    std::string field;                // a schema field's pointer, e.g. "/revenue"
    std::vector<std::string> labels;  // best first, e.g. "total net sales", "total revenues"
};

struct KeyPage {
    std::string name;                   // what the page is, e.g. "balance sheet"
    std::vector<std::string> headings;  // its titles, e.g. "balance sheets"
    std::vector<std::string> terms;     // what it holds, e.g. "total current assets"
    std::vector<LineItem> line_items;   // fields read from its rows
    // A schema field (pointer) that takes the day of the latest period the
    // page's header names ("| September 25, 2021 | September 26, 2020", or
    // "At June 30, 2023" above the figures), as an ISO date; the model's
    // value stands when the header names no day.
    std::string period_field;
    // A schema field (pointer) that takes the unit the page declares for its
    // figures ("(In millions, except per share amounts)"): "thousands",
    // "millions" or "billions"; the model's value stands when it declares none.
    std::string scale_field;
};

// A field a form prints above its caption: "Apple Inc." above "(Exact name
// of Registrant as specified in its charter)" on a filing's cover. The
// value is the plain line (no table cells) right above the first line of the
// first three pages that starts with the caption's words (case, parentheses
// and punctuation aside; "registrants" is not "registrant").
//
// Below: a field a note writes under its heading instead: "Abnormal labs"
// under "CHIEF COMPLAINT", or after it on the same line ("CC: Back pain").
// The value is the first plain line after a line of the caption's words
// alone, or the rest of a line that starts with them and a colon, without
// its closing period.
struct CaptionedField {
    std::string field;    // a property of the schema's root object, e.g. "/company"
    std::string caption;  // e.g. "exact name of registrant"
    bool below = false;   // the line below a heading (pack.json "heading_fields"), not above a caption
};

// A field whose value a phrase of the first pages names: "FORM 10-Q" on a
// filing's cover makes the form "10-Q" and the period quarterly. On the
// first of the first three pages that has any of the field's phrases (as
// lower-case words, like line item labels), the value whose phrase comes
// first wins: a 10-K's cover names "FORM 10-K" before it mentions a
// "TRANSITION REPORT" box or another form.
struct PhraseField {
    struct Choice {
        std::string value;                 // e.g. "quarterly"
        std::vector<std::string> phrases;  // e.g. "form 10-q", "quarterly report pursuant"
    };
    std::string field;  // a property of the schema's root object, e.g. "/period_type"
    std::vector<Choice> choices;
};

struct ExtractOptions {
    std::string instructions;         // the pack's extraction prompt; empty: a generic one
    std::vector<KeyPage> key_pages;   // shown before the pages that match the fields' words
    std::vector<CaptionedField> captioned_fields;  // read above their captions, not asked of the model
    std::vector<PhraseField> phrase_fields;        // named by the first pages' phrases, not asked of the model
    std::vector<std::string> validators;  // run on each record (pack_validators.h); names is_validator accepts
    int max_tokens = 768;             // the JSON's budget
    // Free-text values and whole numbers are copied from the pages shown
    // (JsonSchema::grammar(const SourceText&)): a small model then picks
    // what the document says instead of inventing it. Off: any value the
    // schema allows, grounded afterwards only.
    bool copy_from_source = true;
    const std::atomic<bool>* cancel = nullptr;
};

class Extractor {
public:
    // Compiles the schema's grammar once. Throws SchemaError, and
    // std::invalid_argument for a validator is_validator() refuses or a key
    // page that reads a field other than a leaf property of the schema's
    // root object. A value read from a key page that the schema refuses is
    // left to the model.
    Extractor(ChatModel& model, const JsonSchema& schema, ExtractOptions options);
    ~Extractor();

    // The record of a stored document. Never throws for a document the model
    // cannot handle: the record's error says why. Throws index::StoreError
    // for an unknown doc_id.
    ExtractionRecord extract(Library& library, std::int64_t doc_id);

private:
    struct Compiled;
    ChatModel& model_;
    const JsonSchema& schema_;
    ExtractOptions options_;
    std::unique_ptr<Compiled> compiled_;
};

}  // namespace folio::app
