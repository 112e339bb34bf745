#pragma once
// The library as a table: one row per stored document, plus rows for files an
// ingest has queued but not stored yet. Rows show what is in flight for them
// (queued, parsing, OCR, removing) on top of their stored state.
//
// Thread rules: UI thread only. The model reads the store it is given on that
// thread (SQLite WAL lets these reads proceed while an IngestWorker writes
// the same library from its own connection); it never writes.

#include <QAbstractTableModel>
#include <QCollator>
#include <QHash>
#include <QSortFilterProxyModel>
#include <QString>

#include <optional>
#include <vector>

#include "app/library.h"
#include "index/library_store.h"
#include "ingest/pipeline.h"

namespace folio::ui {

enum class RowState { Queued, Ingesting, Removing, Indexed, Failed };

class LibraryModel final : public QAbstractTableModel {
    Q_OBJECT

public:
    enum Column { NameColumn, TypeColumn, PagesColumn, StatusColumn, SizeColumn, AddedColumn, ColumnCount };
    enum Role {
        SortRole = Qt::UserRole + 1,  // numbers as numbers (unknown: -1), dates as unix seconds, text as shown
        DocumentIdRole,               // qint64; 0 while the file is not stored
        PathRole,                     // absolute path
        StateRole,                    // RowState as int
        ErrorRole,                    // why the file (or its newer version) failed; empty otherwise
        Sha256Role,                   // hex of the stored content; empty while the file is not stored
        CollectionRole,               // the folder the file is in: its collection, as LocalDocs users know them
    };

    // `store` must outlive the model.
    explicit LibraryModel(index::LibraryStore& store, QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // The row showing `path`, or -1.
    int rowOfPath(const QString& path) const;
    int storedDocumentCount() const;

public slots:
    // Re-reads the documents from the store. Rows are updated, inserted and
    // removed one by one (no reset), so a view keeps its selection.
    void refresh();

    // Ingest activity, in the order IngestWorker reports it.
    void markQueued(const QStringList& paths);
    void markProgress(const folio::ingest::PipelineProgress& progress);
    void markFileDone(const folio::app::IngestedFile& file);
    // The ingest ended (finished or cancelled): rows it did not reach go
    // back to their stored state, or away when nothing was stored for them.
    void clearIngestActivity();

    void markRemoving(const QList<qint64>& documentIds);
    // The removal ended: rows it removed go away, the others show their
    // stored state again.
    void markRemovalFinished(const QList<qint64>& documentIds);

signals:
    // Reading the store failed; the rows keep their last known state.
    void storeError(const QString& reason);

private:
    struct Row {
        QString path;
        std::optional<index::DocumentRecord> record;  // absent until the file is first stored
        std::optional<RowState> activity;             // Queued, Ingesting or Removing while in flight
        ingest::PipelineProgress progress;            // the latest, while Ingesting
        QString unstoredError;                        // it failed and the store could not record why
    };

    RowState state(const Row& row) const;
    QString statusText(const Row& row) const;
    QString errorText(const Row& row) const;
    QVariant displayData(const Row& row, int column) const;
    QVariant sortData(const Row& row, int column) const;

    // Replaces the rows with `wanted` (keyed by path) through row-level
    // removals, in-place changes and appends.
    void mergeRows(std::vector<Row> wanted);
    void rebuildPathIndex();
    void rowChanged(int row);
    void appendRow(Row row);

    index::LibraryStore& store_;
    std::vector<Row> rows_;
    QHash<QString, int> rowOfPath_;
};

// Sorts by LibraryModel::SortRole, text in the user's locale's order,
// ignoring case and with numbers by value ("filing-2" before "filing-10");
// filters on the document name, ignoring case, and on a collection (its
// folder and the folders below it).
class LibrarySortFilterModel final : public QSortFilterProxyModel {
    Q_OBJECT

public:
    explicit LibrarySortFilterModel(QObject* parent = nullptr);

    // Empty: every collection.
    void setCollection(const QString& folder);
    const QString& collection() const { return collection_; }

protected:
    bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;
    bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;

private:
    QCollator collator_;
    QString collection_;
};

}  // namespace folio::ui
