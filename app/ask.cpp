#include "app/ask.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>

namespace folio::app {

namespace {

// A short run of tokens repeated this often in a row is a loop, not an answer
// (a sentence or paragraph, fewer times: engine::loop_start).
constexpr int kLoopRepeats = 8;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Written for small models: short imperative lines, the refusal spelt out
// word for word so that says_not_found() can recognise it.
constexpr std::string_view kSystemPrompt =
    "You answer questions using only the numbered sources given with them.\n"
    "After each sentence, cite the sources it comes from, like [1] or [2, 3].\n"
    "Quote figures exactly as the sources write them.\n"
    "If the sources do not contain the answer, reply exactly: Not found in the documents.";

constexpr std::string_view kSourcesHeading = "Sources:\n\n";
constexpr std::string_view kQuestionHeading = "Question: ";

std::string source_block(int number, const index::SearchHit& hit) {
    const std::string pages = hit.page == hit.page_end
                                  ? "p. " + std::to_string(hit.page)
                                  : "pp. " + std::to_string(hit.page) + "-" + std::to_string(hit.page_end);
    return "[" + std::to_string(number) + "] " + std::filesystem::path(hit.path).filename().string() + ", " + pages +
           "\n" + hit.text + "\n\n";
}

std::string trimmed(std::string_view text) {
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!text.empty() && space(text.front())) text.remove_prefix(1);
    while (!text.empty() && space(text.back())) text.remove_suffix(1);
    return std::string(text);
}

// The page of a chunk that holds the quote: chunks may span pages.
int page_of_quote(index::LibraryStore& store, const index::SearchHit& hit, std::string_view quote) {
    if (hit.page == hit.page_end || quote.empty()) return hit.page;
    for (int page = hit.page; page <= hit.page_end; ++page) {
        const std::optional<index::StoredPage> stored = store.page(hit.doc_id, page);
        if (stored && contains_folded(stored->text, quote)) return page;
    }
    return hit.page;
}

}  // namespace

SourcePacking pack_sources(const std::vector<int>& token_costs, int budget) {
    SourcePacking packing;
    for (std::size_t i = 0; i < token_costs.size(); ++i) {
        if (packing.tokens + token_costs[i] <= budget) {
            packing.included.push_back(i);
            packing.tokens += token_costs[i];
        } else {
            packing.left_out.push_back(i);
        }
    }
    return packing;
}

// A small model reads best what sits nearest the question: with the best
// source last, SmolLM2-135M answered 25 of 73 filing questions right, against
// 14 with it first (folio bench ask, docs/benchmarks.md).
std::string user_turn(const std::vector<Source>& new_sources, std::string_view question) {
    std::string text;
    if (!new_sources.empty()) {
        text = kSourcesHeading;
        for (auto source = new_sources.rbegin(); source != new_sources.rend(); ++source)
            text += source_block(source->number, source->hit);
    }
    return text + std::string(kQuestionHeading) + std::string(question);
}

int Answer::unsupported_sentences() const {
    return static_cast<int>(std::count_if(sentences.begin(), sentences.end(), [](const SentenceCheck& s) {
        return s.verdict == SentenceVerdict::Unsupported;
    }));
}

bool says_not_found(std::string_view model_text) {
    std::string text(model_text);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text.find("not found in the document") != std::string::npos || text.rfind("not found", 0) == 0;
}

Conversation::Conversation(ChatModel& model, Library& library, std::string domain)
    : model_(model), library_(library) {
    std::string system(kSystemPrompt);
    if (!domain.empty()) system += "\nThe documents: " + domain;
    messages_.push_back({"system", std::move(system)});
}

Answer Conversation::ask(std::string_view question_text, const AskOptions& options,
                         const std::function<void(std::string_view)>& on_piece) {
    const Clock::time_point start = Clock::now();
    Answer answer;
    answer.question = trimmed(question_text);
    if (answer.question.empty()) throw AskError("the question is empty");

    // The prompt without sources must leave room for the answer.
    const int context = model_.context_tokens();
    std::vector<engine::ChatMessage> messages = messages_;
    messages.push_back({"user", std::string(kSourcesHeading) + user_turn({}, answer.question)});
    const int fixed_tokens = static_cast<int>(model_.prompt_tokens(messages).size());
    if (fixed_tokens + options.max_answer_tokens > context) {
        if (messages_.size() > 1)
            throw AskError("the conversation is " + std::to_string(fixed_tokens) +
                           " tokens with this question; the model's context is " + std::to_string(context) +
                           " (start a new conversation)");
        throw AskError("the question is " + std::to_string(model_.count_tokens(answer.question)) +
                       " tokens; the model's context is " + std::to_string(context));
    }

    // A follow-up is searched with the question before it, so that "and in
    // 2020?" finds its sources.
    index::SearchOptions search;
    search.k = options.k;
    search.doc_ids = options.doc_ids;
    search.mode = library_.has_current_vectors() ? index::SearchMode::Hybrid : index::SearchMode::Bm25;
    search.rerank = options.rerank;
    const std::string query =
        previous_question_.empty() ? answer.question : previous_question_ + "\n" + answer.question;
    std::string keywords = query;
    if (options.glossary) answer.query_expansion = options.glossary->expand_query(query);
    for (const std::string& meaning : answer.query_expansion) keywords += " " + meaning;
    const std::vector<index::SearchHit> hits = library_.search_question(query, keywords, search);
    answer.timings.retrieval_seconds = seconds_since(start);

    std::vector<Source> candidates;
    for (const index::SearchHit& hit : hits) {
        const auto known = std::find_if(sources_.begin(), sources_.end(),
                                        [&](const Source& s) { return s.hit.chunk_id == hit.chunk_id; });
        if (known != sources_.end())
            answer.sources.push_back(*known);
        else
            candidates.push_back({0, hit, model_.count_tokens(source_block(static_cast<int>(sources_.size()) + 1, hit))});
    }
    int budget = context - options.max_answer_tokens - fixed_tokens;
    if (options.source_token_budget > 0) budget = std::min(budget, options.source_token_budget);
    std::vector<int> costs;
    for (const Source& candidate : candidates) costs.push_back(candidate.tokens);
    const SourcePacking packing = pack_sources(costs, budget);
    std::vector<Source> new_sources;
    for (std::size_t i : packing.included) {
        new_sources.push_back(candidates[i]);
        new_sources.back().number = static_cast<int>(sources_.size() + new_sources.size());
    }
    for (std::size_t i : packing.left_out) answer.left_out.push_back(candidates[i]);

    // Blocks are counted apart; should their joins tokenize longer, the
    // last source goes (reported) until the whole prompt fits.
    messages = messages_;
    messages.push_back({"user", user_turn(new_sources, answer.question)});
    std::vector<std::int32_t> prompt = model_.prompt_tokens(messages);
    while (!new_sources.empty() && static_cast<int>(prompt.size()) + options.max_answer_tokens > context) {
        answer.left_out.push_back(new_sources.back());
        answer.left_out.back().number = 0;
        new_sources.pop_back();
        messages.back().content = user_turn(new_sources, answer.question);
        prompt = model_.prompt_tokens(messages);
    }
    answer.sources.insert(answer.sources.end(), new_sources.begin(), new_sources.end());

    if (sources_.empty() && new_sources.empty()) {
        answer.not_found = true;
        answer.text = kNotFoundAnswer;
        answer.timings.total_seconds = seconds_since(start);
        return answer;
    }

    engine::GenerationOptions generation;
    generation.max_tokens = options.max_answer_tokens;
    generation.sampler.temperature = 0;
    // Small models tend to go on with a question of their own.
    generation.stop_strings = {"\n" + std::string(kQuestionHeading)};
    // ...or in a loop ("4,812,000,000,000,…") to the token limit.
    generation.loop_repeats = kLoopRepeats;
    generation.cancel = options.cancel;
    generation.on_piece = on_piece;
    const engine::GenerationResult result = model_.generate(prompt, generation);
    answer.model_text = trimmed(result.text);
    answer.stop_reason = result.stop_reason;
    answer.timings.prompt_tokens = result.timings.prompt_tokens;
    answer.timings.reused_prompt_tokens = result.timings.reused_prompt_tokens;
    answer.timings.answer_tokens = result.timings.generated_tokens;
    answer.timings.time_to_first_token_seconds = result.timings.time_to_first_token_seconds;
    answer.timings.generation_seconds = result.timings.prefill_seconds + result.timings.decode_seconds;

    // The turn joins the conversation as the model wrote it: the next
    // prompt then starts with what the cache holds.
    messages_ = std::move(messages);
    messages_.push_back({"assistant", result.text});
    sources_.insert(sources_.end(), new_sources.begin(), new_sources.end());
    previous_question_ = answer.question;

    std::vector<NumberedSource> numbered;
    for (const Source& source : sources_) numbered.push_back({source.number, source.hit.text});
    answer.sentences = check_citations(answer.model_text, numbered);
    const bool any_supported = std::any_of(answer.sentences.begin(), answer.sentences.end(), [](const SentenceCheck& s) {
        return s.verdict == SentenceVerdict::Supported || s.verdict == SentenceVerdict::Attributed;
    });
    answer.not_found = says_not_found(answer.model_text) || !any_supported;
    answer.text = answer.not_found ? std::string(kNotFoundAnswer) : answer.model_text;
    if (!answer.not_found) {
        for (std::size_t s = 0; s < answer.sentences.size(); ++s) {
            const SentenceCheck& sentence = answer.sentences[s];
            for (std::size_t c = 0; c < sentence.citations.size(); ++c) {
                const int number = sentence.citations[c];
                if (number < 1 || number > static_cast<int>(sources_.size())) continue;
                const index::SearchHit& hit = sources_[number - 1].hit;
                Citation citation;
                citation.number = number;
                citation.sentence = static_cast<int>(s);
                citation.supported = sentence.verdict != SentenceVerdict::Unsupported;
                citation.attributed = sentence.verdict == SentenceVerdict::Attributed;
                citation.doc_id = hit.doc_id;
                citation.chunk_id = hit.chunk_id;
                citation.path = hit.path;
                citation.quote_begin = sentence.quotes[c].begin;
                citation.quote_end = sentence.quotes[c].end;
                citation.quote = hit.text.substr(citation.quote_begin, citation.quote_end - citation.quote_begin);
                citation.page = page_of_quote(library_.store(), hit, citation.quote);
                citation.page_end = hit.page_end;
                answer.citations.push_back(std::move(citation));
            }
        }
    }
    answer.timings.total_seconds = seconds_since(start);
    return answer;
}

}  // namespace folio::app
