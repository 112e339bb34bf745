#include "app/engine_reranker.h"

#include "engine/reranker.h"
#include "engine/thread_pool.h"

namespace folio::app {
namespace {

class EngineReranker final : public index::PassageScorer {
public:
    explicit EngineReranker(const std::filesystem::path& path)
        : reranker_(engine::Reranker::open(path)), name_(path.filename().string()) {}

    const std::string& name() const override { return name_; }

    std::vector<float> score(std::string_view query, std::span<const std::string> passages) override {
        return reranker_.score(query, passages, pool_);
    }

private:
    engine::Reranker reranker_;
    engine::ThreadPool pool_;
    std::string name_;
};

}  // namespace

std::unique_ptr<index::PassageScorer> open_engine_reranker(const std::filesystem::path& path) {
    return std::make_unique<EngineReranker>(path);
}

}  // namespace folio::app
