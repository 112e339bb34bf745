// LibraryModel over a real library store, without a window: rows, columns,
// roles, status text through an ingest's life, and sorting and filtering
// through LibrarySortFilterModel.

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <memory>

#include "index/library_store.h"
#include "ui/library_model.h"

using folio::index::DocumentInput;
using folio::index::LibraryStore;
using folio::ingest::FileType;
using folio::ui::LibraryModel;
using folio::ui::LibrarySortFilterModel;
using folio::ui::RowState;

namespace {

DocumentInput indexedDocument(const QString& path, FileType type, int pages, qint64 size) {
    DocumentInput input{.path = path.toStdString(),
                        .sha256 = QByteArray::number(qHash(path), 16).toStdString(),
                        .size = size,
                        .type = type};
    for (int number = 1; number <= pages; ++number) {
        folio::ingest::Page page;
        page.number = number;
        page.width = 612;
        page.height = 792;
        page.text = "page " + std::to_string(number);
        input.pages.push_back(page);
    }
    return input;
}

}  // namespace

class LibraryModelTest : public QObject {
    Q_OBJECT

private:
    std::unique_ptr<QTemporaryDir> dir_;
    std::unique_ptr<LibraryStore> store_;
    std::unique_ptr<LibraryModel> model_;
    std::unique_ptr<QAbstractItemModelTester> tester_;

    QString path(const QString& name) const { return dir_->filePath("inbox/" + name); }

    QVariant cell(const QString& name, int column, int role = Qt::DisplayRole) const {
        const int row = model_->rowOfPath(path(name));
        return row < 0 ? QVariant() : model_->index(row, column).data(role);
    }

    RowState state(const QString& name) const {
        return static_cast<RowState>(cell(name, LibraryModel::NameColumn, LibraryModel::StateRole).toInt());
    }

    QStringList namesInProxyOrder(const QAbstractItemModel& proxy) const {
        QStringList names;
        for (int row = 0; row < proxy.rowCount(); ++row) names << proxy.index(row, LibraryModel::NameColumn).data().toString();
        return names;
    }

private slots:
    void initTestCase() {
        // Text sorts in the user's locale's order; the C locale a test may
        // run in has none beyond code points.
        QLocale::setDefault(QLocale(QLocale::English, QLocale::UnitedStates));
    }

    void init() {
        dir_ = std::make_unique<QTemporaryDir>();
        QVERIFY(dir_->isValid());
        store_ = LibraryStore::open(dir_->filePath("library").toStdString());
        store_->put_document(indexedDocument(path("b-report.pdf"), FileType::Pdf, 12, 48'000));
        store_->put_document(indexedDocument(path("a-scan.png"), FileType::Png, 1, 2'500'000));
        store_->put_document(indexedDocument(path("C-notes.md"), FileType::Markdown, 1, 900));
        store_->put_document({.path = path("broken.pdf").toStdString(),
                              .sha256 = "00",
                              .size = 10,
                              .type = FileType::Pdf,
                              .error = "damaged PDF: no cross-reference table"});
        model_ = std::make_unique<LibraryModel>(*store_);
        // Checks every change signal and index against the model's contract.
        tester_ = std::make_unique<QAbstractItemModelTester>(model_.get(),
                                                             QAbstractItemModelTester::FailureReportingMode::QtTest);
        model_->refresh();
    }

    void cleanup() {
        tester_.reset();
        model_.reset();
        store_.reset();
        dir_.reset();
    }

    void listsStoredDocuments() {
        QCOMPARE(model_->rowCount(), 4);
        QCOMPARE(model_->columnCount(), int(LibraryModel::ColumnCount));
        QCOMPARE(model_->storedDocumentCount(), 4);
        QCOMPARE(model_->headerData(LibraryModel::NameColumn, Qt::Horizontal).toString(), "Name");
        QCOMPARE(model_->headerData(LibraryModel::StatusColumn, Qt::Horizontal).toString(), "Status");

        QCOMPARE(cell("b-report.pdf", LibraryModel::NameColumn).toString(), "b-report.pdf");
        QCOMPARE(cell("b-report.pdf", LibraryModel::NameColumn, Qt::ToolTipRole).toString(), path("b-report.pdf"));
        QCOMPARE(cell("b-report.pdf", LibraryModel::TypeColumn).toString(), "PDF");
        QCOMPARE(cell("C-notes.md", LibraryModel::TypeColumn).toString(), "Markdown");
        QCOMPARE(cell("b-report.pdf", LibraryModel::PagesColumn).toInt(), 12);
        QCOMPARE(cell("b-report.pdf", LibraryModel::StatusColumn).toString(), "Indexed");
        QVERIFY(!cell("b-report.pdf", LibraryModel::SizeColumn).toString().isEmpty());
        QVERIFY(!cell("b-report.pdf", LibraryModel::AddedColumn).toString().isEmpty());
        QCOMPARE(cell("b-report.pdf", LibraryModel::NameColumn, LibraryModel::PathRole).toString(), path("b-report.pdf"));
        QCOMPARE(cell("b-report.pdf", LibraryModel::NameColumn, LibraryModel::DocumentIdRole).toLongLong(),
                 store_->find_by_path(path("b-report.pdf").toStdString())->id);
        QCOMPARE(state("b-report.pdf"), RowState::Indexed);
    }

    void failedDocumentShowsItsReason() {
        QCOMPARE(state("broken.pdf"), RowState::Failed);
        QCOMPARE(cell("broken.pdf", LibraryModel::StatusColumn).toString(),
                 "Failed: damaged PDF: no cross-reference table");
        QCOMPARE(cell("broken.pdf", LibraryModel::StatusColumn, Qt::ToolTipRole).toString(),
                 "damaged PDF: no cross-reference table");
        QCOMPARE(cell("broken.pdf", LibraryModel::NameColumn, LibraryModel::ErrorRole).toString(),
                 "damaged PDF: no cross-reference table");
        QVERIFY(cell("broken.pdf", LibraryModel::StatusColumn, Qt::ForegroundRole).isValid());
        QVERIFY(cell("broken.pdf", LibraryModel::PagesColumn).toString().isEmpty());
        QVERIFY(!cell("b-report.pdf", LibraryModel::StatusColumn, Qt::ForegroundRole).isValid());
    }

    void showsAnIngestAsItHappens() {
        const QString fresh = path("new-filing.pdf");
        model_->markQueued({fresh, path("b-report.pdf")});
        QCOMPARE(model_->rowCount(), 5);
        QCOMPARE(model_->storedDocumentCount(), 4);
        QCOMPARE(cell("new-filing.pdf", LibraryModel::StatusColumn).toString(), "Queued");
        QCOMPARE(cell("new-filing.pdf", LibraryModel::NameColumn, LibraryModel::DocumentIdRole).toLongLong(), 0);
        QCOMPARE(state("b-report.pdf"), RowState::Queued);

        QSignalSpy changed(model_.get(), &QAbstractItemModel::dataChanged);
        model_->markProgress({.path = fresh.toStdString(), .pages_done = 3, .pages_total = 10});
        QCOMPARE(changed.count(), 1);
        QCOMPARE(changed.first().at(0).toModelIndex().column(), int(LibraryModel::StatusColumn));
        QCOMPARE(state("new-filing.pdf"), RowState::Ingesting);
        QCOMPARE(cell("new-filing.pdf", LibraryModel::StatusColumn).toString(), "Parsing 3/10 pages");
        model_->markProgress(
            {.path = fresh.toStdString(), .pages_done = 6, .pages_total = 10, .ocr_pages_done = 1, .ocr_pages_total = 4});
        QCOMPARE(cell("new-filing.pdf", LibraryModel::StatusColumn).toString(), "OCR 1/4 pages");

        // A refresh in the middle of an ingest keeps the activity.
        model_->refresh();
        QCOMPARE(model_->rowCount(), 5);
        QCOMPARE(cell("new-filing.pdf", LibraryModel::StatusColumn).toString(), "OCR 1/4 pages");

        store_->put_document(indexedDocument(fresh, FileType::Pdf, 10, 77'000));
        model_->markFileDone({.path = fresh.toStdString(), .outcome = folio::app::IngestOutcome::Added, .pages = 10});
        QCOMPARE(state("new-filing.pdf"), RowState::Indexed);
        QCOMPARE(cell("new-filing.pdf", LibraryModel::PagesColumn).toInt(), 10);
        QVERIFY(cell("new-filing.pdf", LibraryModel::NameColumn, LibraryModel::DocumentIdRole).toLongLong() > 0);
        QCOMPARE(model_->storedDocumentCount(), 5);

        // b-report.pdf was not reached (cancelled): back to its stored state.
        model_->clearIngestActivity();
        QCOMPARE(model_->rowCount(), 5);
        QCOMPARE(cell("b-report.pdf", LibraryModel::StatusColumn).toString(), "Indexed");
    }

    void dropsFilesAnIngestNeverStored() {
        model_->markQueued({path("cancelled.pdf"), path("skipped.bin")});
        QCOMPARE(model_->rowCount(), 6);
        model_->markFileDone({.path = path("skipped.bin").toStdString(),
                              .outcome = folio::app::IngestOutcome::Skipped,
                              .error = "not a PDF, image or text file"});
        QCOMPARE(model_->rowCount(), 5);
        QCOMPARE(model_->rowOfPath(path("skipped.bin")), -1);
        model_->clearIngestActivity();
        QCOMPARE(model_->rowCount(), 4);
        QCOMPARE(model_->rowOfPath(path("cancelled.pdf")), -1);
    }

    // A moved file's document leaves its old row; a copy of a stored file gets no row.
    void followsAMovedDocumentAndDropsACopy() {
        const std::int64_t id = store_->find_by_path(path("b-report.pdf").toStdString())->id;
        const QString moved = dir_->filePath("archive/b-report-2023.pdf");
        model_->markQueued({moved, path("copy-of-a-scan.png")});
        QVERIFY(store_->move_document(id, moved.toStdString()));
        model_->markFileDone({.path = moved.toStdString(),
                              .outcome = folio::app::IngestOutcome::Moved,
                              .doc_id = id,
                              .same_as = path("b-report.pdf").toStdString()});
        model_->markFileDone({.path = path("copy-of-a-scan.png").toStdString(),
                              .outcome = folio::app::IngestOutcome::Duplicate,
                              .same_as = path("a-scan.png").toStdString()});
        QCOMPARE(model_->rowCount(), 4);
        QCOMPARE(model_->rowOfPath(path("b-report.pdf")), -1);
        QCOMPARE(model_->rowOfPath(path("copy-of-a-scan.png")), -1);
        const int row = model_->rowOfPath(moved);
        QVERIFY(row >= 0);
        QCOMPARE(model_->index(row, LibraryModel::NameColumn).data(LibraryModel::DocumentIdRole).toLongLong(), id);
        QCOMPARE(model_->storedDocumentCount(), 4);
    }

    // A failure the store could not record still shows, with its reason.
    void keepsAFailureTheStoreCouldNotRecord() {
        model_->markQueued({path("full-disk.pdf")});
        model_->markFileDone({.path = path("full-disk.pdf").toStdString(),
                              .outcome = folio::app::IngestOutcome::Failed,
                              .error = "could not store: database or disk is full"});
        QCOMPARE(state("full-disk.pdf"), RowState::Failed);
        QCOMPARE(cell("full-disk.pdf", LibraryModel::StatusColumn).toString(),
                 "Failed: could not store: database or disk is full");
        model_->clearIngestActivity();
        QCOMPARE(state("full-disk.pdf"), RowState::Failed);
    }

    void indexedCopyWithAFailedNewerVersion() {
        store_->put_document({.path = path("b-report.pdf").toStdString(),
                              .sha256 = "ff",
                              .size = 10,
                              .type = FileType::Pdf,
                              .error = "encrypted PDF: needs a password"});
        model_->refresh();
        QCOMPARE(state("b-report.pdf"), RowState::Indexed);
        QCOMPARE(cell("b-report.pdf", LibraryModel::StatusColumn).toString(), "Indexed (newer version failed)");
        QCOMPARE(cell("b-report.pdf", LibraryModel::StatusColumn, Qt::ToolTipRole).toString(),
                 "encrypted PDF: needs a password");
        QCOMPARE(cell("b-report.pdf", LibraryModel::PagesColumn).toInt(), 12);
    }

    // Refresh changes rows one by one, never by a reset, so views keep
    // their selection.
    void refreshUpdatesRowsInPlace() {
        QSignalSpy reset(model_.get(), &QAbstractItemModel::modelReset);
        QSignalSpy inserted(model_.get(), &QAbstractItemModel::rowsInserted);
        QSignalSpy removed(model_.get(), &QAbstractItemModel::rowsRemoved);
        const int reportRow = model_->rowOfPath(path("b-report.pdf"));
        const QPersistentModelIndex report = model_->index(reportRow, 0);

        QVERIFY(store_->remove_document(store_->find_by_path(path("a-scan.png").toStdString())->id));
        store_->put_document(indexedDocument(path("later.txt"), FileType::Text, 1, 300));
        model_->refresh();

        QCOMPARE(reset.count(), 0);
        QCOMPARE(removed.count(), 1);
        QCOMPARE(inserted.count(), 1);
        QCOMPARE(model_->rowCount(), 4);
        QCOMPARE(model_->rowOfPath(path("a-scan.png")), -1);
        QCOMPARE(cell("later.txt", LibraryModel::TypeColumn).toString(), "Text");
        QVERIFY(report.isValid());
        QCOMPARE(report.data().toString(), "b-report.pdf");
    }

    void showsRemoval() {
        const qint64 id = store_->find_by_path(path("C-notes.md").toStdString())->id;
        model_->markRemoving({id});
        QCOMPARE(state("C-notes.md"), RowState::Removing);
        QCOMPARE(cell("C-notes.md", LibraryModel::StatusColumn).toString(), "Removing");
        QVERIFY(store_->remove_document(id));
        model_->markRemovalFinished({id});
        QCOMPARE(model_->rowOfPath(path("C-notes.md")), -1);
        QCOMPARE(model_->rowCount(), 3);

        // A removal that did not happen leaves the row as it was.
        const qint64 reportId = store_->find_by_path(path("b-report.pdf").toStdString())->id;
        model_->markRemoving({reportId});
        model_->markRemovalFinished({reportId});
        QCOMPARE(state("b-report.pdf"), RowState::Indexed);
    }

    void sortsByValueNotText() {
        LibrarySortFilterModel proxy;
        proxy.setSourceModel(model_.get());

        proxy.sort(LibraryModel::NameColumn, Qt::AscendingOrder);
        QCOMPARE(namesInProxyOrder(proxy), QStringList({"a-scan.png", "b-report.pdf", "broken.pdf", "C-notes.md"}));

        // Numbers inside names by value.
        store_->put_document(indexedDocument(path("filing-10.pdf"), FileType::Pdf, 1, 1));
        store_->put_document(indexedDocument(path("filing-9.pdf"), FileType::Pdf, 1, 1));
        model_->refresh();
        QCOMPARE(namesInProxyOrder(proxy).mid(4), QStringList({"filing-9.pdf", "filing-10.pdf"}));
        QVERIFY(store_->remove_document(store_->find_by_path(path("filing-10.pdf").toStdString())->id));
        QVERIFY(store_->remove_document(store_->find_by_path(path("filing-9.pdf").toStdString())->id));

        // 12 pages sorts above 2 pages; text order would put "12" below "2".
        store_->put_document(indexedDocument(path("two.pdf"), FileType::Pdf, 2, 5'000));
        model_->refresh();
        proxy.sort(LibraryModel::PagesColumn, Qt::DescendingOrder);
        QCOMPARE(namesInProxyOrder(proxy).mid(0, 2), QStringList({"b-report.pdf", "two.pdf"}));

        proxy.sort(LibraryModel::SizeColumn, Qt::DescendingOrder);
        QCOMPARE(namesInProxyOrder(proxy),
                 QStringList({"a-scan.png", "b-report.pdf", "two.pdf", "C-notes.md", "broken.pdf"}));
    }

    void filtersOnTheName() {
        LibrarySortFilterModel proxy;
        proxy.setSourceModel(model_.get());
        proxy.sort(LibraryModel::NameColumn, Qt::AscendingOrder);

        proxy.setFilterFixedString("REPORT");
        QCOMPARE(namesInProxyOrder(proxy), QStringList({"b-report.pdf"}));
        proxy.setFilterFixedString(".pdf");
        QCOMPARE(namesInProxyOrder(proxy), QStringList({"b-report.pdf", "broken.pdf"}));
        // The library's folder is in every path; only names are matched.
        proxy.setFilterFixedString("inbox");
        QCOMPARE(proxy.rowCount(), 0);
        proxy.setFilterFixedString({});
        QCOMPARE(proxy.rowCount(), 4);

        // Rows an ingest adds are filtered as they arrive.
        proxy.setFilterFixedString("filing");
        model_->markQueued({path("annual-filing.pdf")});
        QCOMPARE(namesInProxyOrder(proxy), QStringList({"annual-filing.pdf"}));
    }
};

QTEST_MAIN(LibraryModelTest)
#include "tst_library_model.moc"
