#pragma once
// Questions answered from the library's documents (`folio ask`, the GUI's
// chat): retrieve the best chunks, fit them whole into the model's context
// under a token budget (a chunk that does not fit is reported, never cut),
// number them as sources before the question, let the model answer citing
// [n], then check every sentence against its sources (citation_check.h)
// and map each citation to its document, page, chunk and quoted sentence.
//
// A conversation keeps its turns: a follow-up question appends its new
// sources and itself as a new user turn after the previous answer, and the
// sources keep their numbers, so the prompt grows at its end and the
// ChatModel's prefix cache computes only what is new. A question asked again
// over the same sources (a new conversation included) reuses the whole
// sources prefix.
//
//   ChatModel model({.path = *engine::find_default_model(engine::ModelRole::Chat)});
//   Conversation conversation(model, library);
//   Answer answer = conversation.ask("What was iPhone revenue in 2021?", {}, print_piece);
//   answer = conversation.ask("And in 2020?");
//
// Thread rules: one thread at a time (the model runs on it); on_piece is
// called on it; AskOptions::cancel may be set from any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/chat_model.h"
#include "app/citation_check.h"
#include "app/glossary.h"
#include "app/library.h"
#include "engine/generator.h"
#include "index/retriever.h"

namespace folio::app {

// What the answer says when the sources do not hold the answer.
inline constexpr std::string_view kNotFoundAnswer = "Not found in the documents.";

// A question that cannot be asked: empty, or longer than the model's
// context leaves room for. what() is one line.
class AskError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct AskOptions {
    int k = 8;                               // chunks retrieved
    std::vector<std::int64_t> doc_ids;       // search these documents only; empty: the whole library
    int max_answer_tokens = 384;             // reserved in the context for the answer
    int source_token_budget = 0;             // most tokens of new sources; 0: what the context leaves
    // A pack's glossary: the meanings of the question's abbreviations join
    // the keyword search ("BP" also finds "blood pressure"); the vector
    // search embeds the question as asked. Must outlive the call.
    const Glossary* glossary = nullptr;
    // The search's first candidates reread by the library's cross-encoder
    // (Library::reranker) before the sources are chosen: on the filings it
    // finds the answer's page in the first 5 for 0.894 of the questions
    // against 0.856, and the answers' citations are precise for 0.657 of
    // them against 0.441 (docs/benchmarks.md), for 2-4 s a question on two
    // cores. The CLI and the window ask so whenever a reranker is installed
    // (ask_rerank_argument, FolioSettings::rerankSources).
    bool rerank = false;
    const std::atomic<bool>* cancel = nullptr;
};

// A retrieved chunk and what it costs in the prompt.
struct Source {
    int number = 0;                          // [n]; 0 for one left out
    index::SearchHit hit;
    int tokens = 0;                          // its block in the prompt
};

// Which sources fit a budget: whole, in rank order, each one that does not
// fit left out (a later, shorter one may still fit).
struct SourcePacking {
    std::vector<std::size_t> included;       // indices into the costs, in order
    std::vector<std::size_t> left_out;
    int tokens = 0;                          // of the included
};
SourcePacking pack_sources(const std::vector<int>& token_costs, int budget);

// A question's user turn: its new sources, each "[n] file, p. N" and its
// text, the best ranked (lowest number) last, then the question.
std::string user_turn(const std::vector<Source>& new_sources, std::string_view question);

// One [n] of the answer, resolved.
struct Citation {
    int number = 0;
    int sentence = 0;                        // index into Answer::sentences
    bool supported = false;                  // the sentence passed the check
    bool attributed = false;                 // the model did not cite; the check found the source
    std::int64_t doc_id = 0, chunk_id = 0;
    std::string path;
    int page = 0, page_end = 0;              // page: where the quote is (1-based); page_end: the chunk's last
    std::string quote;                       // the source's sentence closest to the answer's
    std::size_t quote_begin = 0, quote_end = 0;  // bytes in the chunk's text
};

struct AskTimings {
    double retrieval_seconds = 0;
    int prompt_tokens = 0;
    int reused_prompt_tokens = 0;            // found in the prefix cache
    int answer_tokens = 0;
    double time_to_first_token_seconds = 0;  // the engine's: from generation's start to the first token
    double generation_seconds = 0;           // prefill and decode
    double total_seconds = 0;                // retrieval to the checked answer
};

struct Answer {
    std::string question;
    std::string text;                        // the model's answer, or kNotFoundAnswer
    std::string model_text;                  // what the model wrote (empty when it was not asked)
    bool not_found = false;
    std::vector<SentenceCheck> sentences;    // of model_text
    std::vector<Citation> citations;         // none when not_found
    std::vector<Source> sources;             // retrieved and in the prompt, new or numbered earlier
    std::vector<Source> left_out;            // retrieved but over the token budget
    std::vector<std::string> query_expansion;  // what the glossary added to the keyword search
    engine::StopReason stop_reason = engine::StopReason::EndOfGeneration;
    AskTimings timings;

    int unsupported_sentences() const;
};

// Whether the model's text says the sources do not hold the answer.
bool says_not_found(std::string_view model_text);

class Conversation {
public:
    // `domain`: a line about the documents for the system prompt (a pack's
    // description); empty: none. Both references must outlive the conversation.
    Conversation(ChatModel& model, Library& library, std::string domain = {});

    // Throws AskError, index::SearchError (a question with no searchable
    // word), engine::GenerationError and engine::ModelError.
    Answer ask(std::string_view question, const AskOptions& options = {},
               const std::function<void(std::string_view piece)>& on_piece = {});

    const std::vector<engine::ChatMessage>& messages() const { return messages_; }
    const std::vector<Source>& sources() const { return sources_; }  // numbered so far

private:
    ChatModel& model_;
    Library& library_;
    std::vector<engine::ChatMessage> messages_;  // the system turn, then user and assistant turns
    std::vector<Source> sources_;
    std::string previous_question_;
};

}  // namespace folio::app
