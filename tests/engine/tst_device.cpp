// The device query the CLI and the settings page show. On a machine without
// a GPU (or without the CUDA backend) it must say why, not fail.

#include <QTest>

#include "engine/device.h"

class DeviceTest : public QObject {
    Q_OBJECT

private slots:
    void reportIsConsistent() {
        const folio::engine::GpuReport report = folio::engine::detect_gpus();
        if (report.gpus.empty()) {
            QVERIFY2(!report.note.empty(), "no GPU listed and no reason given");
            QSKIP(qPrintable(QString("no GPU here: %1").arg(QString::fromStdString(report.note))));
        }
        QVERIFY(report.backend_built);
        QVERIFY(report.note.empty());
        for (const auto& gpu : report.gpus) {
            QVERIFY(!gpu.name.empty());
            QVERIFY(gpu.compute_major >= 5);
            QVERIFY(gpu.total_bytes > 0);
            QVERIFY(gpu.free_bytes <= gpu.total_bytes);
        }
    }
};

QTEST_GUILESS_MAIN(DeviceTest)
#include "tst_device.moc"
