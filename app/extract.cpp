#include "app/extract.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <optional>
#include <set>

#include "app/extract_pages.h"
#include "app/grounding.h"
#include "app/record_closing.h"
#include "app/value_normalize.h"
#include "engine/grammar.h"

namespace folio::app {

using nlohmann::json;

struct Extractor::Compiled {
    std::optional<engine::Grammar> grammar;  // free values; with copy_from_source a grammar is made per document
    std::string field_guide;  // the schema's fields, one a line, for the prompt
    std::string field_words;  // their names and descriptions, to find the pages that hold them
};

namespace {

// A run of tokens repeated this many times in a row ends generation (the
// run's first time kept): the record's array is then closed and generation
// goes on, at most kMaxArrayClosings times.
constexpr int kLoopRepeats = 4;
constexpr int kMaxArrayClosings = 2;

constexpr const char* kGenericInstructions =
    "You read one document and fill in a JSON record. Copy values exactly as the document writes them. Use null "
    "when the document does not say. Do not invent anything.";

// "/medications/0/name" → "/medications/*/name": the schema field a value belongs to.
std::string field_pattern(const std::string& pointer) {
    std::string pattern;
    std::size_t start = 0;
    while (start < pointer.size()) {
        std::size_t end = pointer.find('/', start + 1);
        if (end == std::string::npos) end = pointer.size();
        const std::string segment = pointer.substr(start + 1, end - start - 1);
        const bool index = !segment.empty() && std::all_of(segment.begin(), segment.end(), ::isdigit);
        pattern += "/" + (index ? std::string("*") : segment);
        start = end;
    }
    return pattern;
}

void collect_leaves(const json& node, const std::string& pointer, std::vector<std::pair<std::string, json>>& leaves) {
    if (node.is_object()) {
        for (const auto& [key, child] : node.items()) collect_leaves(child, pointer + "/" + key, leaves);
    } else if (node.is_array()) {
        for (std::size_t i = 0; i < node.size(); ++i) collect_leaves(node[i], pointer + "/" + std::to_string(i), leaves);
    } else {
        leaves.emplace_back(pointer, node);
    }
}

// A model that loops repeats an array item; the copies carry nothing new.
void drop_repeated_items(json& node, const json& schema) {
    if (node.is_object()) {
        for (auto& [key, child] : node.items())
            drop_repeated_items(child, schema.contains("properties") && schema["properties"].contains(key)
                                           ? schema["properties"][key]
                                           : json::object());
    } else if (node.is_array()) {
        const std::size_t min_items = schema.value("minItems", 0);
        json kept = json::array();
        std::set<std::string> seen;
        for (auto& item : node) {
            drop_repeated_items(item, schema.value("items", json::object()));
            if (seen.insert(item.dump()).second || kept.size() < min_items) kept.push_back(item);
        }
        node = std::move(kept);
    }
}

// The pages the prompt shows: all of them when they fit the budget; else
// the first page (where a document names itself), the key pages, and then the
// pages whose chunks best match the schema's field names and descriptions,
// in page order.
std::vector<int> choose_pages(Library& library, std::int64_t doc_id, const std::vector<std::string>& page_texts,
                              int budget, const ChatModel& model, const std::string& field_words,
                              const std::vector<FoundKeyPage>& key_pages) {
    std::vector<int> tokens(page_texts.size());
    int total = 0;
    for (std::size_t i = 0; i < page_texts.size(); ++i) total += tokens[i] = model.count_tokens(page_texts[i]);
    std::vector<int> chosen;
    if (total <= budget) {
        for (std::size_t i = 0; i < page_texts.size(); ++i) chosen.push_back(static_cast<int>(i) + 1);
        return chosen;
    }
    std::vector<int> ranked = {1};
    for (const FoundKeyPage& key : key_pages) ranked.insert(ranked.end(), key.pages.begin(), key.pages.end());
    index::SearchOptions search{.k = 40, .mode = index::SearchMode::Bm25, .doc_ids = {doc_id}};
    for (const index::SearchHit& hit : library.search(field_words, search))
        for (int page = hit.page; page <= hit.page_end; ++page) ranked.push_back(page);
    int used = 0;
    for (const int page : ranked) {
        if (page < 1 || page > static_cast<int>(page_texts.size())) continue;
        if (std::find(chosen.begin(), chosen.end(), page) != chosen.end()) continue;
        if (used + tokens[page - 1] > budget) continue;
        chosen.push_back(page);
        used += tokens[page - 1];
    }
    std::sort(chosen.begin(), chosen.end());
    return chosen;
}

// Copied words can run past a string's maxLength (the grammar counts words,
// not characters): cut such a string at the last word boundary that fits.
void trim_to_max_length(json& node, const json& schema) {
    if (node.is_object()) {
        for (auto& [key, child] : node.items())
            if (schema.contains("properties") && schema["properties"].contains(key))
                trim_to_max_length(child, schema["properties"][key]);
    } else if (node.is_array()) {
        for (auto& item : node) trim_to_max_length(item, schema.value("items", json::object()));
    } else if (node.is_string() && schema.contains("maxLength")) {
        const std::size_t limit = schema["maxLength"].get<std::size_t>();
        const std::string text = node.get<std::string>();
        std::size_t characters = 0, cut = 0, last_space = std::string::npos;
        for (; cut < text.size(); ++cut) {
            if ((static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) continue;
            if (characters == limit) break;
            if (text[cut] == ' ') last_space = cut;
            ++characters;
        }
        if (cut < text.size()) node = text.substr(0, last_space != std::string::npos ? last_space : cut);
    }
}

// Two generations of one record: counts and times add up; the first token
// came in the first.
void add_timings(engine::GenerationTimings& total, const engine::GenerationTimings& more) {
    total.generated_tokens += more.generated_tokens;
    total.prefill_seconds += more.prefill_seconds;
    total.decode_seconds += more.decode_seconds;
    if (total.decode_seconds > 0) total.decode_tokens_per_second = total.generated_tokens / total.decode_seconds;
}

std::string value_text(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

}  // namespace

Extractor::Extractor(ChatModel& model, const JsonSchema& schema, ExtractOptions options)
    : model_(model), schema_(schema), options_(std::move(options)) {
    for (const std::string& name : options_.validators)
        if (!is_validator(name)) throw std::invalid_argument("no validator named '" + name + "'");
    const std::vector<SchemaField> fields = schema_.fields();
    std::vector<std::string> fields_read;
    for (const KeyPage& key : options_.key_pages) {
        for (const LineItem& item : key.line_items) fields_read.push_back(item.field);
        for (const std::string& field : {key.period_field, key.scale_field})
            if (!field.empty()) fields_read.push_back(field);
    }
    for (const CaptionedField& captioned : options_.captioned_fields) fields_read.push_back(captioned.field);
    for (const PhraseField& phrased : options_.phrase_fields) fields_read.push_back(phrased.field);
    for (const std::string& field : fields_read)
        if (std::ranges::find(fields, field, &SchemaField::pointer) == fields.end() ||
            field.find('/', 1) != std::string::npos)
            throw std::invalid_argument("the pack reads " + field + " from the pages, and it is not a property of "
                                        "the schema's root object");
    compiled_ = std::make_unique<Compiled>();
    if (!options_.copy_from_source) compiled_->grammar = engine::Grammar::parse(schema_.grammar());
    for (const SchemaField& field : fields) {
        compiled_->field_guide += "- " + field.pointer + " (" + field.type + (field.format.empty() ? "" : ", " + field.format) + ")";
        if (!field.description.empty()) compiled_->field_guide += ": " + field.description;
        compiled_->field_guide += "\n";
        for (char c : field.pointer + " " + field.description)
            compiled_->field_words += std::isalnum(static_cast<unsigned char>(c)) ? c : ' ';
        compiled_->field_words += ' ';
    }
}

Extractor::~Extractor() = default;

ExtractionRecord Extractor::extract(Library& library, std::int64_t doc_id) {
    const auto started = std::chrono::steady_clock::now();
    const std::optional<index::DocumentRecord> document = library.store().document(doc_id);
    if (!document) throw index::StoreError("no document " + std::to_string(doc_id));
    ExtractionRecord record;
    record.doc_id = doc_id;
    record.path = document->path;
    record.pages = document->pages;
    record.data = nullptr;
    const auto finish = [&]() -> ExtractionRecord {
        record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        return std::move(record);
    };
    if (document->status != index::DocumentStatus::Indexed) {
        record.error = "the document could not be read: " + document->error;
        return finish();
    }

    std::vector<PageText> pages;  // pages[i] is page i + 1
    for (int number = 1; number <= document->pages; ++number) {
        std::optional<index::StoredPage> page = library.store().page(doc_id, number);
        pages.push_back({number, page ? std::move(page->text) : std::string()});
    }

    const std::string system = (options_.instructions.empty() ? std::string(kGenericInstructions)
                                                               : options_.instructions) +
                               "\nThe record's fields:\n" + compiled_->field_guide + "Reply with the JSON record only.";
    const int budget = model_.context_tokens() - options_.max_tokens - model_.count_tokens(system) - 64;
    const LaidOutPages laid_out(library.store().chunks(doc_id), pages);
    std::vector<std::string> page_texts;
    for (int number = 1; number <= document->pages; ++number) page_texts.push_back(laid_out.text({number}));
    const std::vector<FoundKeyPage> key_pages = find_key_pages(options_.key_pages, page_texts);
    const std::vector<int> chosen =
        choose_pages(library, doc_id, page_texts, budget, model_, compiled_->field_words, key_pages);
    const std::string text = laid_out.text(chosen);
    if (text.find_first_not_of(" \n\t[]page0123456789") == std::string::npos) {
        record.error = "the document has no text";
        return finish();
    }

    // A statement's row says a figure more surely than a model reading it,
    // and a statement without the row does not print the figure (a model
    // asked for it writes some other number); so do a cover's captioned
    // line and the phrase that names its form: the grammar writes what the
    // pages give, and the model the rest.
    std::map<std::string, LineItemValue> page_values = read_line_items(key_pages, page_texts);
    page_values.merge(read_captioned_fields(options_.captioned_fields, page_texts));
    page_values.merge(read_phrase_fields(options_.phrase_fields, page_texts));
    std::map<std::string, json> read_values;  // by property name
    for (const auto& [pointer, item] : page_values) {
        const json value = item.value ? json(*item.value) : json(nullptr);
        // A value the schema refuses is left to the model.
        if (schema_.accepts_property(pointer.substr(1), value)) read_values.emplace(pointer.substr(1), value);
    }
    const std::optional<JsonSchema> fixed =
        read_values.empty() ? std::nullopt : std::optional<JsonSchema>(schema_.with_fixed_properties(read_values));
    const JsonSchema& schema = fixed ? *fixed : schema_;
    const engine::Grammar grammar = options_.copy_from_source
                                        ? engine::Grammar::parse(schema.grammar(SourceText::of(laid_out.text(chosen, false))))
                                        : fixed ? engine::Grammar::parse(schema.grammar())
                                                : *compiled_->grammar;
    engine::GrammarMatcher matcher(grammar, model_.vocab());
    engine::GenerationOptions generation;
    generation.max_tokens = options_.max_tokens;
    generation.sampler.temperature = 0;
    generation.cancel = options_.cancel;
    generation.grammar = &matcher;
    generation.loop_repeats = kLoopRepeats;
    const std::vector<engine::ChatMessage> messages = {{"system", system},
                                                       {"user", "Document:\n" + text + "\nThe JSON record:"}};
    engine::GenerationResult result = model_.generate(messages, generation);
    record.timings = result.timings;
    std::string reply = result.text;
    // A model that lists the same items until the budget runs out loses the
    // whole record; instead the list is closed where it began repeating and
    // the model goes on from there, within what is left of the budget.
    // (After a loop stop the matcher has seen the repeats the reply no longer holds.)
    const auto unfinished = [&] {
        return result.stop_reason == engine::StopReason::Repetition ||
               (result.stop_reason == engine::StopReason::MaxTokens && !matcher.can_end());
    };
    for (int closing = 0; closing < kMaxArrayClosings && unfinished(); ++closing) {
        const std::optional<std::string> closed = close_runaway_array(reply, matcher);
        if (!closed) break;
        generation.max_tokens = options_.max_tokens - model_.count_tokens(*closed);
        if (generation.max_tokens <= 0) break;
        result = model_.generate(messages, generation, *closed);
        add_timings(record.timings, result.timings);
        reply = *closed + result.text;
    }
    if (result.stop_reason == engine::StopReason::Cancelled) {
        record.error = "cancelled";
        return finish();
    }
    if (unfinished() || !matcher.can_end()) {
        record.error = "the record did not fit in " + std::to_string(options_.max_tokens) + " tokens";
        return finish();
    }
    json data;
    try {
        data = json::parse(reply);
    } catch (const json::parse_error& e) {
        record.error = std::string("the model's record is not JSON: ") + e.what();  // a grammar defect: say so
        return finish();
    }
    drop_repeated_items(data, schema_.source());
    if (options_.copy_from_source) trim_to_max_length(data, schema_.source());
    if (const std::vector<std::string> problems = schema_.validate(data); !problems.empty()) {
        record.error = "the record does not validate: " + problems.front();
        return finish();
    }
    record.data = std::move(data);
    record.pages_read = static_cast<int>(chosen.size());

    std::map<std::string, std::string> formats;
    for (const SchemaField& field : schema_.fields()) formats[field.pointer] = field.format;
    std::vector<std::pair<std::string, json>> leaves;
    collect_leaves(record.data, "", leaves);
    const PageIndex page_index(pages);
    for (auto& [pointer, value] : leaves) {
        if (value.is_null()) continue;
        ExtractedValue extracted;
        extracted.pointer = pointer;
        extracted.value = value;
        const std::string format = formats[field_pattern(pointer)];
        const std::string as_text = value_text(value);
        extracted.normalized = normalize_value(as_text, format);
        // A value read from a key page is located on that page first.
        std::optional<GroundedSpan> span;
        if (const auto item = page_values.find(pointer);
            item != page_values.end() && item->second.value && *item->second.value == as_text)
            span = locate_value(as_text, std::span(pages).subspan(static_cast<std::size_t>(item->second.page - 1), 1),
                                format);
        if (!span) span = page_index.locate(as_text, format);
        if (span) {
            extracted.grounded = true;
            extracted.page = span->page;
            extracted.begin = span->begin;
            extracted.end = span->end;
            extracted.quote = span->quote;
            ++record.grounded;
        } else {
            ++record.ungrounded;
        }
        record.values.push_back(std::move(extracted));
    }
    record.validation = validate_record(options_.validators, record.data, pages);
    return finish();
}

}  // namespace folio::app
