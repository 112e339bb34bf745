#include "app/bench_ask.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "app/ask.h"
#include "app/citation_check.h"
#include "app/cli_support.h"

namespace folio::app {

namespace {

using nlohmann::json;

std::vector<std::string> answer_forms_of(const json& line) {
    if (line.contains("answer_forms")) return line.at("answer_forms").get<std::vector<std::string>>();
    if (line.contains("answer")) return {line.at("answer").get<std::string>()};
    const auto evidence = line.at("evidence").get<std::vector<std::string>>();
    std::vector<std::string> figures;
    std::copy_if(evidence.begin(), evidence.end(), std::back_inserter(figures),
                 [](const std::string& text) { return !numbers_in_text(text).empty(); });
    return figures.empty() ? evidence : figures;
}

double median(std::vector<double> values) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const std::size_t mid = values.size() / 2;
    return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

bool states_all(std::string_view text, const std::vector<std::string>& forms) {
    return std::all_of(forms.begin(), forms.end(), [&](const std::string& form) { return states_answer(text, {form}); });
}

// A cite form "A|B|C" is shown when all of A, B and C are.
bool shows_cite_form(std::string_view page_text, const std::vector<std::string>& cite_forms) {
    return std::any_of(cite_forms.begin(), cite_forms.end(), [&](const std::string& form) {
        std::vector<std::string> parts;
        for (std::size_t start = 0; start <= form.size();) {
            const std::size_t bar = std::min(form.find('|', start), form.size());
            parts.push_back(form.substr(start, bar - start));
            start = bar + 1;
        }
        return states_all(page_text, parts);
    });
}

std::int64_t doc_id_of(Library& library, const std::string& file_name) {
    for (const index::DocumentRecord& doc : library.store().documents())
        if (std::filesystem::path(doc.path).filename() == file_name) return doc.id;
    throw std::runtime_error("no document named " + file_name + " in " + library.directory());
}

}  // namespace

std::vector<AskBenchQuestion> read_ask_questions(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<AskBenchQuestion> questions;
    int number = 0;
    for (std::string text; std::getline(in, text);) {
        ++number;
        if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = path + " line " + std::to_string(number);
        try {
            const json line = json::parse(text);
            AskBenchQuestion question;
            question.id = line.value("id", "line " + std::to_string(number));
            question.query = line.contains("query") ? line.at("query").get<std::string>()
                                                    : line.at("question").get<std::string>();
            question.doc = line.at("doc").get<std::string>();
            question.pages = line.value("pages", std::vector<int>{});
            question.answer_forms = answer_forms_of(line);
            if (question.answer_forms.empty()) throw std::runtime_error("no answer forms");
            question.answer_all = line.value("answer_all", std::vector<std::string>{});
            question.cite_forms = line.value("cite_forms", question.answer_forms);
            questions.push_back(std::move(question));
        } catch (const json::exception& e) {
            throw std::runtime_error(where + ": " + e.what());
        } catch (const std::runtime_error& e) {
            throw std::runtime_error(where + ": " + e.what());
        }
    }
    return questions;
}

bool states_answer(std::string_view text, const std::vector<std::string>& forms) {
    const std::vector<NumberMention> stated = numbers_in_text(text);
    for (const std::string& form : forms) {
        const std::vector<NumberMention> figures = numbers_in_text(form);
        if (figures.empty()) {
            if (contains_folded(text, form)) return true;
            continue;
        }
        for (const NumberMention& figure : figures)
            for (const NumberMention& number : stated)
                if (numbers_match(number, figure) || numbers_match(figure, number)) return true;
    }
    return false;
}

AskBenchReport run_ask_bench(Library& library, ChatModel& model, const std::vector<AskBenchQuestion>& questions,
                             const AskBenchOptions& options, const std::function<void(const AskBenchRow&)>& row_done) {
    AskBenchReport report;
    int correct = 0, not_found = 0, precise = 0;
    std::vector<double> first_ttft, repeat_ttft;
    for (const AskBenchQuestion& question : questions) {
        AskOptions ask;
        ask.k = options.k;
        ask.max_answer_tokens = options.max_answer_tokens;
        ask.rerank = options.rerank;
        const std::int64_t labelled_doc = doc_id_of(library, question.doc);
        ask.doc_ids = {labelled_doc};
        ask.cancel = &g_cancel;
        AskBenchRow row;
        row.id = question.id;

        const Answer first = Conversation(model, library).ask(question.query, ask);
        row.not_found = first.not_found;
        row.correct = !first.not_found && (states_answer(first.text, question.answer_forms) ||
                                           (!question.answer_all.empty() && states_all(first.text, question.answer_all)));
        row.unsupported_sentences = first.unsupported_sentences();
        row.prompt_tokens = first.timings.prompt_tokens;
        row.first_reused_tokens = first.timings.reused_prompt_tokens;
        row.ttft_first_seconds = first.timings.time_to_first_token_seconds;
        for (const Citation& citation : first.citations) {
            ++row.citations;
            const bool labelled_page =
                std::find(question.pages.begin(), question.pages.end(), citation.page) != question.pages.end() &&
                citation.doc_id == labelled_doc;
            const std::optional<index::StoredPage> page = library.store().page(citation.doc_id, citation.page);
            row.precise_citations += labelled_page || (page && shows_cite_form(page->text, question.cite_forms));
        }

        // The repeat needs its first token only.
        std::atomic<bool> first_token{false};
        ask.cancel = &first_token;
        const Answer repeat =
            Conversation(model, library).ask(question.query, ask, [&](std::string_view) { first_token = true; });
        row.repeat_reused_tokens = repeat.timings.reused_prompt_tokens;
        row.ttft_repeat_seconds = repeat.timings.time_to_first_token_seconds;

        correct += row.correct;
        not_found += row.not_found;
        report.citations += row.citations;
        precise += row.precise_citations;
        // A question with nothing retrieved never reached the model: no time to its first token.
        if (!first.model_text.empty()) {
            first_ttft.push_back(row.ttft_first_seconds);
            repeat_ttft.push_back(row.ttft_repeat_seconds);
        }
        report.rows.push_back(row);
        if (row_done) row_done(row);
        if (g_cancel.load()) break;
    }
    const double asked = std::max<std::size_t>(1, report.rows.size());
    report.answer_accuracy = correct / asked;
    report.not_found_rate = not_found / asked;
    report.citation_precision = report.citations ? static_cast<double>(precise) / report.citations : 0;
    report.ttft_first_median_seconds = median(first_ttft);
    report.ttft_repeat_median_seconds = median(repeat_ttft);
    report.ttft_speedup =
        report.ttft_repeat_median_seconds > 0 ? report.ttft_first_median_seconds / report.ttft_repeat_median_seconds : 0;
    return report;
}

int command_bench_ask(const std::string& library_dir, const std::vector<std::string>& args_in) {
    const ParsedArgs args =
        parse_args("bench ask", args_in,
                   {.valued = {"questions", "model", "k", "max-tokens"}, .flags = {"json", "rerank", "no-rerank"}});
    if (!args.positional.empty()) throw UsageError("bench ask takes its question set as --questions FILE.jsonl");
    const std::string questions_file = args.value("questions").value_or("");
    if (questions_file.empty()) throw UsageError("bench ask needs --questions FILE.jsonl");
    const std::vector<AskBenchQuestion> questions = read_ask_questions(questions_file);
    AskBenchOptions options;
    options.k = parse_int("k", args.value("k").value_or("8"), 1, 100);
    options.max_answer_tokens = parse_int("max-tokens", args.value("max-tokens").value_or("384"), 1, 8192);
    options.rerank = ask_rerank_argument(args);
    const bool as_json = args.has("json");
    Library library(library_dir.empty() ? Library::default_directory() : library_dir);
    ChatModel model({.path = model_file_argument(args, engine::ModelRole::Chat, "chat")});
    InterruptGuard interrupt;

    if (!as_json)
        std::printf("%-16s %-7s %-9s %9s %11s %8s %10s %11s\n", "question", "correct", "not_found", "citations",
                    "on_answer", "prompt", "ttft_first", "ttft_repeat");
    const AskBenchReport report = run_ask_bench(library, model, questions, options, [&](const AskBenchRow& row) {
        if (as_json)
            print_json({{"id", row.id},
                        {"correct", row.correct},
                        {"not_found", row.not_found},
                        {"citations", row.citations},
                        {"precise_citations", row.precise_citations},
                        {"unsupported_sentences", row.unsupported_sentences},
                        {"prompt_tokens", row.prompt_tokens},
                        {"first_reused_tokens", row.first_reused_tokens},
                        {"repeat_reused_tokens", row.repeat_reused_tokens},
                        {"ttft_first_seconds", row.ttft_first_seconds},
                        {"ttft_repeat_seconds", row.ttft_repeat_seconds}});
        else
            std::printf("%-16s %-7s %-9s %9d %11d %8d %9.3fs %10.3fs\n", row.id.c_str(), row.correct ? "yes" : "no",
                        row.not_found ? "yes" : "no", row.citations, row.precise_citations, row.prompt_tokens,
                        row.ttft_first_seconds, row.ttft_repeat_seconds);
        std::fflush(stdout);
    });
    const json summary = {{"model", std::filesystem::path(model.path()).filename().string()},
                          {"reranked", options.rerank},
                          {"questions", report.rows.size()},
                          {"answer_accuracy", report.answer_accuracy},
                          {"citation_precision", report.citation_precision},
                          {"citations", report.citations},
                          {"not_found_rate", report.not_found_rate},
                          {"ttft_first_median_seconds", report.ttft_first_median_seconds},
                          {"ttft_repeat_median_seconds", report.ttft_repeat_median_seconds},
                          {"ttft_speedup", report.ttft_speedup}};
    if (!as_json)
        std::printf("\n%zu questions%s: answer accuracy %.3f, citation precision %.3f (%d citations), not found %.3f\n"
                    "time to first token: first %.3f s, repeat %.3f s (median), %.1fx faster\n",
                    report.rows.size(), options.rerank ? ", sources reranked" : "", report.answer_accuracy,
                    report.citation_precision, report.citations, report.not_found_rate,
                    report.ttft_first_median_seconds, report.ttft_repeat_median_seconds, report.ttft_speedup);
    print_json(summary);
    return g_cancel.load() ? 130 : 0;
}

}  // namespace folio::app
