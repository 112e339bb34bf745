#pragma once
// Summaries of whole documents whose points cite the pages they come from.
// A document whose pages fit the model's context is summarized in one pass;
// a longer one is cut into sections of whole pages that fit (map), each
// section is summarized with page citations, and the sections' points are
// merged (reduce), in rounds while they do not fit one prompt. Pages are read
// from the store one at a time, so memory holds one section's text and the
// points so far, however long the document.
//
//   Summarizer summarizer(chat_model, {.progress = [](const SummarizeProgress& p) { ... }});
//   Summary summary = summarizer.summarize(library.store(), doc_id);
//
// Citations are checked, not trusted: a point keeps the cited pages that
// are in the text it was written from and share a content word with it, if
// together they hold kMinSupport of its content words; otherwise its pages
// become those of the evidence (a page; when merging, a section's point) that
// holds the most of them. A point that no evidence supports that well is
// dropped as not grounded: small models invent.
//
// Thread rules: as ChatModel's (one thread at a time); cancel may be set
// from any thread, progress is called on the summarizing thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/chat_model.h"
#include "index/library_store.h"

namespace folio::app {

// A document that cannot be summarized (unknown, failed to ingest, no
// text), or options the model's context cannot serve. what() is one line.
class SummarizeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SummaryPoint {
    std::string text;        // without its citation
    std::vector<int> pages;  // 1-based, ascending, never empty
    // The pages are Folio's attribution, not the model's citation (it cited
    // none it could have read, or none that share a word with the point).
    bool pages_inferred = false;
};

// The fraction of a point's content words that the evidence it is
// attributed to must contain, below which the point is dropped.
inline constexpr double kMinSupport = 0.34;

enum class SummarizeStage { Sections, Merging };

struct SummarizeProgress {
    SummarizeStage stage = SummarizeStage::Sections;
    int done = 0, total = 0;            // sections summarized; or merges done in this round
    int round = 0;                      // Merging: 1 for the first round of merges
    int first_page = 0, last_page = 0;  // the pages the step just done covered
};

// What one stage cost: model calls, tokens and wall time.
struct StageTimings {
    int calls = 0;
    std::int64_t prompt_tokens = 0, generated_tokens = 0;
    double seconds = 0;
};

struct SummaryTimings {
    double plan_seconds = 0;  // reading and measuring the pages before the first call
    StageTimings sections, merging;
    double seconds = 0;       // the whole summary
};

struct Summary {
    std::int64_t doc_id = 0;
    std::string path;
    int pages = 0;                   // the document's
    std::vector<SummaryPoint> points;
    int sections = 0;                // 1: the document fit one pass
    bool single_pass = false;
    int merge_rounds = 0;
    int dropped_points = 0;          // written by the model but not grounded in the text (kMinSupport)
    bool cancelled = false;          // points is then empty
    SummaryTimings timings;
};

struct SummarizeOptions {
    int points = 5;                  // bullets asked for per section and in the summary
    int point_tokens = 60;           // room for one bullet, citation included
    int section_tokens = 0;          // most document tokens in one prompt; 0: what the context leaves
    std::string focus;               // whose reading to serve (a domain pack's description); empty: none
    const std::atomic<bool>* cancel = nullptr;
    std::function<void(const SummarizeProgress&)> progress;
};

// "(p. 3, 5)", "(p. 3-5)": how points and their pages are written.
std::string format_pages(std::span<const int> pages);
// One line per point: "- text (p. 3, 5)".
std::string format_points(std::span<const SummaryPoint> points);

// A bullet as the model wrote it: its text with the citations taken out,
// and the pages they name ("(p. 12)", "(pp. 12-13)", "[p. 12]", "(page 3,
// 5)"), ascending, without repeats. Bullet marks and numbering are removed.
struct CitedLine {
    std::string text;
    std::vector<int> pages;
};
CitedLine parse_cited_line(std::string_view line);

// What a point may be grounded in: a page's text while sections are
// summarized, a section's point (its text and pages) while they are merged.
struct PointEvidence {
    std::string_view text;
    std::vector<int> pages;
};
// The points of a model's reply, grounded in evidence as the top of this
// file says, duplicates merged (their pages joined). `cut_off`: the reply
// ended at the token limit, so its last line is unfinished and dropped.
// Adds the points dropped as not grounded to *dropped.
std::vector<SummaryPoint> ground_points(std::string_view reply, std::span<const PointEvidence> evidence,
                                        bool cut_off, int* dropped);

class Summarizer {
public:
    // Throws SummarizeError when the model's context leaves no room for a
    // section and the merges (points and point_tokens too large for it).
    Summarizer(ChatModel& model, SummarizeOptions options);

    // Throws SummarizeError for an unknown document, a failed one or one
    // with no text; engine errors from the model pass through.
    Summary summarize(index::LibraryStore& store, std::int64_t doc_id);

private:
    std::vector<engine::ChatMessage> messages(std::string request) const;
    // The grounded points of the model's reply to request.
    std::vector<SummaryPoint> write_points(std::string request, std::span<const PointEvidence> evidence,
                                           StageTimings& timings, Summary& summary);
    // The sections' points merged into the summary's, in rounds.
    std::vector<SummaryPoint> merge(std::vector<SummaryPoint> points, Summary& summary);
    bool cancelled() const;

    ChatModel& model_;
    SummarizeOptions options_;
    int output_tokens_ = 0;   // the reply's budget
    int section_budget_ = 0;  // document tokens per prompt
};

}  // namespace folio::app
