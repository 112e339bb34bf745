#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/ask.h"
#include "app/chat_model.h"
#include "app/cli_commands.h"
#include "app/cli_support.h"
#include "app/library.h"
#include "app/packs.h"

namespace folio::app {

namespace {

using nlohmann::json;

json source_json(const Source& source) {
    return {{"n", source.number},          {"doc_id", source.hit.doc_id}, {"path", source.hit.path},
            {"page", source.hit.page},     {"page_end", source.hit.page_end}, {"chunk_id", source.hit.chunk_id},
            {"tokens", source.tokens}};
}

// reranked: whether the sources were chosen from a reranked search.
json answer_json(const Answer& answer, bool reranked) {
    json citations = json::array(), sentences = json::array(), sources = json::array(), left_out = json::array();
    for (const Citation& c : answer.citations)
        citations.push_back({{"n", c.number},
                             {"doc_id", c.doc_id},
                             {"path", c.path},
                             {"page", c.page},
                             {"page_end", c.page_end},
                             {"chunk_id", c.chunk_id},
                             {"quote", c.quote},
                             {"quote_begin", c.quote_begin},
                             {"quote_end", c.quote_end},
                             {"sentence", c.sentence},
                             {"supported", c.supported},
                             {"attributed", c.attributed}});
    for (const SentenceCheck& s : answer.sentences)
        sentences.push_back({{"text", s.text},
                             {"citations", s.citations},
                             {"verdict", verdict_name(s.verdict)},
                             {"supported", s.verdict != SentenceVerdict::Unsupported},
                             {"attributed", s.verdict == SentenceVerdict::Attributed},
                             {"reason", s.reason}});
    for (const Source& s : answer.sources) sources.push_back(source_json(s));
    for (const Source& s : answer.left_out) left_out.push_back(source_json(s));
    const AskTimings& t = answer.timings;
    return {{"question", answer.question},
            {"answer", answer.text},
            {"not_found", answer.not_found},
            {"model_answer", answer.model_text},
            {"stop_reason", engine::stop_reason_name(answer.stop_reason)},
            {"citations", citations},
            {"sentences", sentences},
            {"unsupported_sentences", answer.unsupported_sentences()},
            {"sources", sources},
            {"reranked", reranked},
            {"left_out", left_out},
            {"left_out_count", answer.left_out.size()},
            {"query_expansion", answer.query_expansion},
            {"timings",
             {{"retrieval_seconds", t.retrieval_seconds},
              {"prompt_tokens", t.prompt_tokens},
              {"reused_prompt_tokens", t.reused_prompt_tokens},
              {"answer_tokens", t.answer_tokens},
              {"time_to_first_token_seconds", t.time_to_first_token_seconds},
              {"generation_seconds", t.generation_seconds},
              {"total_seconds", t.total_seconds}}}};
}

std::string pages_text(int page, int page_end) {
    return page == page_end ? "p. " + std::to_string(page)
                            : "pp. " + std::to_string(page) + "-" + std::to_string(page_end);
}

// What follows the streamed answer: the verdict where the check overrules
// the model, flags for unsupported sentences, the sources with their quotes.
void print_answer_footer(const Answer& answer) {
    if (!answer.model_text.empty()) std::printf("\n");
    if (answer.stop_reason == engine::StopReason::MaxTokens)
        std::printf("(the answer stopped at %d tokens)\n", answer.timings.answer_tokens);
    if (answer.stop_reason == engine::StopReason::Cancelled) std::printf("(interrupted)\n");
    if (answer.stop_reason == engine::StopReason::Repetition)
        std::printf("(the model began repeating itself; the repeats were cut)\n");
    if (answer.model_text.empty()) {
        std::printf("%s\n", answer.text.c_str());  // nothing was retrieved: the model was not asked
    } else if (answer.not_found) {
        if (!says_not_found(answer.model_text))
            std::printf("%s (no sentence above is supported by the sources)\n", answer.text.c_str());
    } else {
        for (const SentenceCheck& s : answer.sentences)
            if (s.verdict == SentenceVerdict::Unsupported)
                std::printf("! unsupported: %s (%s)\n", s.text.c_str(), s.reason.c_str());
    }
    if (!answer.sources.empty()) std::printf("\nSources:\n");
    for (const Source& source : answer.sources) {
        std::printf("[%d] %s %s\n", source.number, std::filesystem::path(source.hit.path).filename().c_str(),
                    pages_text(source.hit.page, source.hit.page_end).c_str());
        const auto cited = std::find_if(answer.citations.begin(), answer.citations.end(), [&](const Citation& c) {
            return c.number == source.number && !c.quote.empty();
        });
        if (cited != answer.citations.end()) {
            std::string quote = cited->quote;
            std::replace(quote.begin(), quote.end(), '\n', ' ');
            std::printf("    p. %d%s: \"%s\"\n", cited->page, cited->attributed ? " (attributed: the answer did not cite it)" : "",
                        quote.c_str());
        }
    }
    if (!answer.left_out.empty()) {
        std::printf("%zu retrieved chunk%s did not fit the model's context:", answer.left_out.size(),
                    answer.left_out.size() == 1 ? "" : "s");
        for (const Source& source : answer.left_out)
            std::printf(" %s %s (chunk %lld)", std::filesystem::path(source.hit.path).filename().c_str(),
                        pages_text(source.hit.page, source.hit.page_end).c_str(),
                        static_cast<long long>(source.hit.chunk_id));
        std::printf("\n");
    }
    std::fflush(stdout);
}

}  // namespace

int command_ask(const std::string& library_dir, const std::vector<std::string>& args_in) {
    const ParsedArgs args =
        parse_args("ask", args_in,
                   {.valued = {"k", "doc", "pack", "model", "max-tokens"},
                    .flags = {"json", "no-adapter", "rerank", "no-rerank"}});
    if (args.positional.size() != 1)
        throw UsageError("ask takes one question (quote it), or - to read questions from stdin");
    AskOptions options;
    options.k = parse_int("k", args.value("k").value_or("8"), 1, 100);
    options.max_answer_tokens = parse_int("max-tokens", args.value("max-tokens").value_or("384"), 1, 8192);
    options.rerank = ask_rerank_argument(args);
    options.cancel = &g_cancel;
    const bool as_json = args.has("json");

    Library library(library_dir);
    const auto documents = library.store().documents();
    if (std::none_of(documents.begin(), documents.end(),
                     [](const index::DocumentRecord& d) { return d.status == index::DocumentStatus::Indexed; }))
        throw UsageError("the library in " + library.directory() + " has no documents (add some with folio ingest)");
    options.doc_ids = doc_ids_argument(args, library);
    // Opened before the chat model: a reranker that does not load is one
    // error line at once, which says how to ask without it when no flag chose it.
    if (options.rerank) {
        try {
            library.reranker();
        } catch (const index::SearchError& e) {
            const char* hint = args.has("rerank") ? "" : " (folio ask --no-rerank answers without it)";
            throw UsageError(e.what() + std::string(hint));
        }
    }
    std::optional<PackContent> pack;
    if (auto name = args.value("pack")) {
        try {
            pack = load_pack(*name);
        } catch (const PackError& e) {
            throw UsageError(e.what());
        }
        options.glossary = &pack->glossary;
    }

    // With "-", questions are read and answered one a line as they come: one conversation.
    const bool from_stdin = args.positional[0] == "-";
    auto next_question = [&, asked = 0]() mutable -> std::optional<std::string> {
        if (!from_stdin) return asked++ ? std::nullopt : std::optional(args.positional[0]);
        for (std::string line; std::getline(std::cin, line);)
            if (line.find_first_not_of(" \t\r") != std::string::npos) return line;
        return std::nullopt;
    };

    ChatModel model({.path = model_file_argument(args, engine::ModelRole::Chat, "chat")});
    if (pack) use_pack_adapters(model, *pack, args);
    Conversation conversation(model, library, pack ? pack->description : std::string());
    InterruptGuard interrupt;
    int asked = 0;
    for (std::optional<std::string> question; !g_cancel.load() && (question = next_question()); ++asked) {
        if (!as_json && from_stdin) std::printf("> %s\n", question->c_str());
        Answer answer;
        try {
            answer = conversation.ask(*question, options, [&](std::string_view piece) {
                if (as_json) return;
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            });
        } catch (const AskError& e) {
            throw UsageError(e.what());
        } catch (const index::SearchError& e) {
            throw UsageError(e.what());
        }
        if (as_json) {
            print_json(answer_json(answer, options.rerank));
            std::fflush(stdout);
        } else {
            print_answer_footer(answer);
            if (from_stdin) std::printf("\n");
        }
    }
    if (asked == 0 && !g_cancel.load()) throw UsageError("no questions on stdin (one a line)");
    return g_cancel.load() ? 130 : 0;
}

}  // namespace folio::app
