#pragma once
// `folio bench ask`: how well `folio ask` answers a labelled question set
// over a library, and how much the prefix cache saves a repeated question.
//
// The file holds one JSON object a line (tests/data/ask/README.md):
// `question` (or `query`), `doc` (the file name of the document that
// answers it), `pages` (1-based, where the answer is), `answer_forms` (any
// one of them in an answer makes it right, as does stating every name of
// `answer_all` where given; without answer_forms, `answer`; without that, as in
// tests/data/retrieval, the `evidence` strings that hold a figure, or all of
// them when none does) and `cite_forms` (what a cited page may show
// instead of being labelled, "A|B" meaning both; default: answer_forms).
//
// Each question is asked within its document in a new conversation (the
// first), then again in another new conversation (the repeat: the same
// prompt, found in the prefix cache; it stops at its first token).
// - answer accuracy: the share of first answers that state an answer form
//   (a "Not found" answer is wrong);
// - citation precision: the share of the first answers' citations whose
//   page is labelled or whose page's text states a cite form;
// - time to first token of the first and of the repeat, medians and ratio.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "app/chat_model.h"
#include "app/library.h"

namespace folio::app {

struct AskBenchQuestion {
    std::string id;                          // the line's `id`, else "line N"
    std::string query, doc;
    std::vector<int> pages;
    std::vector<std::string> answer_forms;
    std::vector<std::string> answer_all;     // names that, all stated, also make an answer right
    std::vector<std::string> cite_forms;
};

// Throws std::runtime_error naming the line for a malformed one.
std::vector<AskBenchQuestion> read_ask_questions(const std::string& path);

// Whether text states one of forms: for a form with figures, a figure of
// the text matching one of them either way (numbers_match: "191,973" and
// "$192.0 billion"); for one without, the form itself, case and spacing folded.
bool states_answer(std::string_view text, const std::vector<std::string>& forms);

struct AskBenchOptions {
    int k = 8;
    int max_answer_tokens = 384;
    bool rerank = false;                     // AskOptions::rerank
};

struct AskBenchRow {
    std::string id;
    bool correct = false;
    bool not_found = false;
    int citations = 0, precise_citations = 0;
    int unsupported_sentences = 0;
    int prompt_tokens = 0;
    int first_reused_tokens = 0;             // what the first found cached (the system prompt, at most)
    int repeat_reused_tokens = 0;
    double ttft_first_seconds = 0, ttft_repeat_seconds = 0;
};

struct AskBenchReport {
    std::vector<AskBenchRow> rows;
    double answer_accuracy = 0;
    double citation_precision = 0;           // 0 when there were no citations
    int citations = 0;
    double not_found_rate = 0;
    double ttft_first_median_seconds = 0, ttft_repeat_median_seconds = 0;
    double ttft_speedup = 0;                 // first median / repeat median
};

// Throws std::runtime_error for a `doc` not in the library.
AskBenchReport run_ask_bench(Library& library, ChatModel& model, const std::vector<AskBenchQuestion>& questions,
                             const AskBenchOptions& options,
                             const std::function<void(const AskBenchRow&)>& row_done = {});

// `folio bench ask --questions FILE.jsonl [--model FILE] [--k N] [--max-tokens N] [--json]` (cli.cpp dispatches it).
int command_bench_ask(const std::string& library_dir, const std::vector<std::string>& args);

}  // namespace folio::app
