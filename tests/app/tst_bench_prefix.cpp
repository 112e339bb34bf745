// The prefix-cache measurement of `folio bench engine` on the tiny model:
// the repeat reuses the whole context, and the context is cut to the
// model's training context. (Its timings are the bench's to report.)

#include <QTest>

#include <filesystem>
#include <memory>

#include "app/bench_engine.h"
#include "app/bench_prefix.h"
#include "engine/gguf.h"
#include "engine/model.h"

using namespace folio;

class BenchPrefixTest : public QObject {
    Q_OBJECT

private slots:
    void repeatReusesTheContext();
};

void BenchPrefixTest::repeatReusesTheContext() {
    const std::unique_ptr<engine::Model> model =
        engine::load_model(engine::GgufFile::open(std::filesystem::path(FOLIO_TEST_DATA) / "llama_tiny/model.gguf"));
    engine::ThreadPool pool(2);
    const app::PrefixReuse reuse = app::measure_prefix_reuse(*model, pool, 100);
    QCOMPARE(reuse.context_tokens, 100);
    QCOMPARE(reuse.reused_tokens, 100);
    QVERIFY(reuse.first_ttft_s > 0 && reuse.repeat_ttft_s > 0);
    QCOMPARE(reuse.speedup, reuse.first_ttft_s / reuse.repeat_ttft_s);

    // 256 training positions: room for the 24-token question and one more.
    QCOMPARE(app::measure_prefix_reuse(*model, pool, 3000).context_tokens, 256 - 24 - 1);

    app::BenchFigures figures;
    app::add_prefix_reuse(figures, reuse);
    const nlohmann::json& json = figures.as_json()["prefix_cache"];
    for (const char* key : {"context_tokens", "first_ttft_s", "repeat_ttft_s", "speedup", "reused_tokens"})
        QVERIFY2(json.contains(key), key);
    QCOMPARE(json["reused_tokens"].get<int>(), 100);
    QCOMPARE(figures.lines().size(), std::size_t{1});
}

QTEST_GUILESS_MAIN(BenchPrefixTest)
#include "tst_bench_prefix.moc"
