#pragma once
// The adapters a LoRA golden of tests/data/lora_tiny names (tools/
// make_lora_goldens.py): shared by the CPU (tst_lora) and GPU (tst_cuda) suites.

#include <QJsonArray>
#include <QJsonObject>
#include <QtTest>

#include <filesystem>

#include "engine/gguf.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "tests/support/golden_json.h"

namespace folio::test {

// The PEFT goldens of tests/data/lora_tiny as a data-driven test's rows, in a
// QString column "golden_name": the same set on the CPU and the GPU.
inline void add_peft_golden_rows() {
    QTest::addColumn<QString>("golden_name");
    QTest::newRow("plain r8") << "golden_plain.json";
    QTest::newRow("rslora r4") << "golden_rslora.json";
    QTest::newRow("both at 0.5 and -0.75") << "golden_mixed.json";
}

// The golden's "adapters" [{folder, scale}], each folder's adapter.gguf (beside
// the golden) loaded for model, at its scale.
inline engine::LoraSet golden_adapters(const std::filesystem::path& golden, const engine::Model& model) {
    engine::LoraSet set;
    for (const QJsonValue& value : read_json_object(golden)["adapters"].toArray()) {
        const QJsonObject adapter = value.toObject();
        const std::filesystem::path file =
            golden.parent_path() / adapter["folder"].toString().toStdString() / "adapter.gguf";
        set.uses.push_back({engine::LoraAdapter::load(engine::GgufFile::open(file), model),
                            static_cast<float>(adapter["scale"].toDouble())});
    }
    return set;
}

}  // namespace folio::test
