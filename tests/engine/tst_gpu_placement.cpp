// How a mixture of experts larger than the GPU is split with the host
// (engine/gpu_placement.h): the fewest expert layers, from the first, stay
// in host memory so that the rest of the model, the remaining experts and
// the context fit the GPU's free memory. The split itself runs in the CUDA
// suite (tst_cuda expertsKeptOnTheHostMatchCpu).

#include <QTest>

#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/gpu_placement.h"
#include "engine/model.h"

using namespace folio::engine;

namespace {

constexpr std::size_t kGiB = std::size_t{1} << 30;

}  // namespace

class GpuPlacementTest : public QObject {
    Q_OBJECT

private slots:
    void keepsNothingOnTheHostWhenAllFits() {
        const std::vector<std::size_t> experts(4, 2 * kGiB);
        QCOMPARE(expert_layers_to_keep_on_host(experts, 3 * kGiB, 16 * kGiB, 5 * kGiB), 0);  // exactly full
    }

    void keepsTheFewestFirstLayersThatMakeRoom() {
        const std::vector<std::size_t> experts{1 * kGiB, 3 * kGiB, 2 * kGiB, 2 * kGiB};
        // 4 of weights + 1 reserved + 8 of experts = 13 against 10 free: the
        // first layer frees 1, the second 3 more.
        QCOMPARE(expert_layers_to_keep_on_host(experts, 4 * kGiB, 10 * kGiB, 1 * kGiB), 2);
        QCOMPARE(expert_layers_to_keep_on_host(experts, 4 * kGiB, 12 * kGiB, 1 * kGiB), 1);
        // Only the rest of the model fits: every layer's experts on the host.
        QCOMPARE(expert_layers_to_keep_on_host(experts, 4 * kGiB, 5 * kGiB, 1 * kGiB), 4);
    }

    void saysWhatIsNeededWhenEvenTheRestDoesNotFit() {
        const std::vector<std::size_t> experts(2, kGiB);
        try {
            expert_layers_to_keep_on_host(experts, 6 * kGiB, 7 * kGiB, 2 * kGiB);
            QFAIL("placed a model whose attention does not fit");
        } catch (const ModelError& e) {
            QCOMPARE(QString(e.what()),
                     QString("the model needs 8.00 GiB of GPU memory besides its experts (6.00 GiB of weights, "
                             "2.00 GiB for the context and activations), but only 7.00 GiB is free (use a smaller "
                             "context or --device cpu)"));
        }
    }

    // A dense model has no experts to keep: the list is empty and nothing moves.
    void aDenseModelKeepsNothing() {
        QCOMPARE(expert_layers_to_keep_on_host({}, 3 * kGiB, 4 * kGiB, kGiB), 0);
    }

    // What fitting leaves free: the context's KV cache, as make_kv_cache
    // would allocate it, and the activations' margin.
    void reservesTheContextsCacheAndTheActivations() {
        const GgufFile file = GgufFile::open(std::filesystem::path(FOLIO_TEST_DATA) / "qwen3moe_tiny" / "model.gguf");
        std::unique_ptr<Model> model = load_model(file);
        const ModelConfig& c = model->config();
        for (const KvType type : {KvType::F16, KvType::Q8_0}) {
            const GpuPlacement placement{.context_positions = 4096, .kv_type = type};
            QCOMPARE(model->gpu_reserved_bytes(placement),
                     KvCache::bytes_needed(c.n_layers, 4096, c.n_kv_heads, c.n_kv_heads * c.head_dim,
                                           c.n_kv_heads * c.v_head_dim, type) +
                         kGpuActivationReserveBytes);
        }
        const GpuPlacement trained{};
        QCOMPARE(model->gpu_reserved_bytes(trained),
                 KvCache::bytes_needed(c.n_layers, c.n_ctx_train, c.n_kv_heads, c.n_kv_heads * c.head_dim,
                                       c.n_kv_heads * c.v_head_dim, KvType::F16) +
                     kGpuActivationReserveBytes);
        QCOMPARE(model->host_expert_layers(), 0);  // on the CPU every weight is on the host
    }
};

QTEST_APPLESS_MAIN(GpuPlacementTest)
#include "tst_gpu_placement.moc"
