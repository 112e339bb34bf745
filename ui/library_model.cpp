#include "ui/library_model.h"

#include <QColor>
#include <QDateTime>
#include <QFileInfo>
#include <QLocale>
#include <QSet>

#include <algorithm>
#include <exception>

namespace folio::ui {
namespace {

QString typeName(ingest::FileType type) {
    switch (type) {
    case ingest::FileType::Pdf: return QStringLiteral("PDF");
    case ingest::FileType::Png: return QStringLiteral("PNG");
    case ingest::FileType::Jpeg: return QStringLiteral("JPEG");
    case ingest::FileType::Tiff: return QStringLiteral("TIFF");
    case ingest::FileType::Text: return LibraryModel::tr("Text");
    case ingest::FileType::Markdown: return LibraryModel::tr("Markdown");
    case ingest::FileType::Unknown: break;
    }
    return {};
}

}  // namespace

LibraryModel::LibraryModel(index::LibraryStore& store, QObject* parent) : QAbstractTableModel(parent), store_(store) {}

int LibraryModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int LibraryModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant LibraryModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
    case NameColumn: return tr("Name");
    case TypeColumn: return tr("Type");
    case PagesColumn: return tr("Pages");
    case StatusColumn: return tr("Status");
    case SizeColumn: return tr("Size");
    case AddedColumn: return tr("Added");
    }
    return {};
}

RowState LibraryModel::state(const Row& row) const {
    if (row.activity) return *row.activity;
    if (!row.unstoredError.isEmpty() || !row.record) return RowState::Failed;
    return row.record->status == index::DocumentStatus::Failed ? RowState::Failed : RowState::Indexed;
}

QString LibraryModel::errorText(const Row& row) const {
    if (!row.unstoredError.isEmpty()) return row.unstoredError;
    return row.record ? QString::fromStdString(row.record->error) : QString();
}

QString LibraryModel::statusText(const Row& row) const {
    switch (state(row)) {
    case RowState::Queued: return tr("Queued");
    case RowState::Removing: return tr("Removing");
    case RowState::Ingesting: {
        const ingest::PipelineProgress& p = row.progress;
        if (p.ocr_pages_total > 0 && p.ocr_pages_done < p.ocr_pages_total)
            return tr("OCR %1/%2 pages").arg(p.ocr_pages_done).arg(p.ocr_pages_total);
        if (p.pages_total > 0) return tr("Parsing %1/%2 pages").arg(p.pages_done).arg(p.pages_total);
        return tr("Opening");
    }
    case RowState::Indexed:
        // The stored copy is still the good one; a newer version of the file
        // could not be read (the tooltip says why).
        return errorText(row).isEmpty() ? tr("Indexed") : tr("Indexed (newer version failed)");
    case RowState::Failed: return tr("Failed: %1").arg(errorText(row));
    }
    return {};
}

QVariant LibraryModel::displayData(const Row& row, int column) const {
    const index::DocumentRecord* record = row.record ? &*row.record : nullptr;
    switch (column) {
    case NameColumn: return QFileInfo(row.path).fileName();
    case TypeColumn: return record ? typeName(record->type) : QString();
    case PagesColumn: return record && record->status == index::DocumentStatus::Indexed ? QVariant(record->pages)
                                                                                        : QVariant(QString());
    case StatusColumn: return statusText(row);
    case SizeColumn:
        return record && record->size > 0
                   ? QLocale().formattedDataSize(record->size, 1, QLocale::DataSizeTraditionalFormat)
                   : QString();
    case AddedColumn:
        return record ? QLocale().toString(QDateTime::fromSecsSinceEpoch(record->created_at), QLocale::ShortFormat)
                      : QString();
    }
    return {};
}

QVariant LibraryModel::sortData(const Row& row, int column) const {
    const index::DocumentRecord* record = row.record ? &*row.record : nullptr;
    switch (column) {
    case PagesColumn: return record ? qint64(record->pages) : qint64(-1);
    case SizeColumn: return record ? qint64(record->size) : qint64(-1);
    case AddedColumn: return record ? qint64(record->created_at) : qint64(-1);
    }
    return displayData(row, column);
}

QVariant LibraryModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid)) return {};
    const Row& row = rows_[static_cast<size_t>(index.row())];
    const int column = index.column();
    switch (role) {
    case Qt::DisplayRole: return displayData(row, column);
    case Qt::ToolTipRole:
        if (column == NameColumn) return row.path;
        if (column == StatusColumn && !errorText(row).isEmpty()) return errorText(row);
        return {};
    case Qt::TextAlignmentRole:
        if (column == PagesColumn || column == SizeColumn) return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case Qt::ForegroundRole:
        if (column == StatusColumn && state(row) == RowState::Failed) return QColor(0xb0, 0x1c, 0x1c);
        return {};
    case SortRole: return sortData(row, column);
    case DocumentIdRole: return row.record ? qint64(row.record->id) : qint64(0);
    case PathRole: return row.path;
    case CollectionRole: return QFileInfo(row.path).absolutePath();
    case StateRole: return static_cast<int>(state(row));
    case ErrorRole: return errorText(row);
    case Sha256Role: return row.record ? QString::fromStdString(row.record->sha256) : QString();
    }
    return {};
}

int LibraryModel::rowOfPath(const QString& path) const { return rowOfPath_.value(path, -1); }

int LibraryModel::storedDocumentCount() const {
    return static_cast<int>(std::count_if(rows_.begin(), rows_.end(), [](const Row& row) { return row.record; }));
}

void LibraryModel::refresh() {
    std::vector<index::DocumentRecord> records;
    try {
        records = store_.documents();
    } catch (const std::exception& e) {
        emit storeError(QString::fromStdString(e.what()));
        return;
    }
    std::vector<Row> wanted;
    wanted.reserve(records.size() + rows_.size());
    QSet<QString> stored;
    for (index::DocumentRecord& record : records) {
        Row row{QString::fromStdString(record.path)};
        if (const int existing = rowOfPath(row.path); existing >= 0) {
            row.activity = rows_[existing].activity;
            row.progress = rows_[existing].progress;
            row.unstoredError = rows_[existing].unstoredError;
        }
        row.record = std::move(record);
        stored.insert(row.path);
        wanted.push_back(std::move(row));
    }
    // Files in flight, or whose failure could not be stored, have no record
    // yet but stay listed.
    for (const Row& row : rows_)
        if (!stored.contains(row.path) && (row.activity || !row.unstoredError.isEmpty()))
            wanted.push_back(Row{row.path, std::nullopt, row.activity, row.progress, row.unstoredError});
    mergeRows(std::move(wanted));
}

void LibraryModel::mergeRows(std::vector<Row> wanted) {
    QHash<QString, int> wantedIndex;
    for (int i = 0; i < static_cast<int>(wanted.size()); ++i) wantedIndex.insert(wanted[i].path, i);

    // Remove unwanted rows bottom-up, one contiguous run at a time.
    for (int last = static_cast<int>(rows_.size()) - 1; last >= 0;) {
        if (wantedIndex.contains(rows_[last].path)) {
            --last;
            continue;
        }
        int first = last;
        while (first > 0 && !wantedIndex.contains(rows_[first - 1].path)) --first;
        beginRemoveRows({}, first, last);
        rows_.erase(rows_.begin() + first, rows_.begin() + last + 1);
        endRemoveRows();
        last = first - 1;
    }

    std::vector<bool> placed(wanted.size(), false);
    for (Row& row : rows_) {
        const int i = wantedIndex.value(row.path);
        row = std::move(wanted[i]);
        placed[i] = true;
    }
    rebuildPathIndex();
    if (!rows_.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));

    for (size_t i = 0; i < wanted.size(); ++i)
        if (!placed[i]) appendRow(std::move(wanted[i]));
}

void LibraryModel::rebuildPathIndex() {
    rowOfPath_.clear();
    for (int i = 0; i < static_cast<int>(rows_.size()); ++i) rowOfPath_.insert(rows_[i].path, i);
}

void LibraryModel::rowChanged(int row) { emit dataChanged(index(row, 0), index(row, ColumnCount - 1)); }

void LibraryModel::appendRow(Row row) {
    const int position = rowCount();
    beginInsertRows({}, position, position);
    rowOfPath_.insert(row.path, position);
    rows_.push_back(std::move(row));
    endInsertRows();
}

void LibraryModel::markQueued(const QStringList& paths) {
    for (const QString& path : paths) {
        if (const int row = rowOfPath(path); row >= 0) {
            rows_[row].activity = RowState::Queued;
            rows_[row].progress = {};
            rows_[row].unstoredError.clear();
            rowChanged(row);
        } else {
            appendRow(Row{path, std::nullopt, RowState::Queued});
        }
    }
}

void LibraryModel::markProgress(const ingest::PipelineProgress& progress) {
    const int row = rowOfPath(QString::fromStdString(progress.path));
    if (row < 0) return;
    rows_[row].activity = RowState::Ingesting;
    rows_[row].progress = progress;
    const QModelIndex status = index(row, StatusColumn);
    emit dataChanged(status, status);
}

void LibraryModel::markFileDone(const app::IngestedFile& file) {
    const QString path = QString::fromStdString(file.path);
    int row = rowOfPath(path);
    if (row < 0) {
        appendRow(Row{path});
        row = rowCount() - 1;
    }
    Row& done = rows_[row];
    done.activity.reset();
    done.progress = {};
    done.unstoredError.clear();
    try {
        done.record = store_.find_by_path(file.path);
    } catch (const std::exception& e) {
        emit storeError(QString::fromStdString(e.what()));
    }
    // A failure the store recorded shows through the record; one it could
    // not record ("could not store: ...") would otherwise vanish.
    if (file.outcome == app::IngestOutcome::Failed && (!done.record || done.record->error.empty()))
        done.unstoredError = QString::fromStdString(file.error);

    if (!done.record && done.unstoredError.isEmpty()) {
        // Skipped inside a folder (not a PDF, image or text file): never stored.
        beginRemoveRows({}, row, row);
        rows_.erase(rows_.begin() + row);
        endRemoveRows();
        rebuildPathIndex();
        return;
    }
    rowChanged(row);
    // The document left the row of its old path.
    if (file.outcome == app::IngestOutcome::Moved) refresh();
}

void LibraryModel::clearIngestActivity() {
    for (int row = 0; row < rowCount(); ++row) {
        std::optional<RowState>& activity = rows_[row].activity;
        if (activity == RowState::Queued || activity == RowState::Ingesting) {
            activity.reset();
            rowChanged(row);
        }
    }
    refresh();
}

void LibraryModel::markRemoving(const QList<qint64>& documentIds) {
    const QSet<qint64> ids(documentIds.begin(), documentIds.end());
    for (int row = 0; row < rowCount(); ++row) {
        if (rows_[row].record && ids.contains(rows_[row].record->id)) {
            rows_[row].activity = RowState::Removing;
            rowChanged(row);
        }
    }
}

void LibraryModel::markRemovalFinished(const QList<qint64>& documentIds) {
    const QSet<qint64> ids(documentIds.begin(), documentIds.end());
    for (int row = 0; row < rowCount(); ++row) {
        if (rows_[row].activity == RowState::Removing && rows_[row].record && ids.contains(rows_[row].record->id)) {
            rows_[row].activity.reset();
            rowChanged(row);
        }
    }
    refresh();
}

LibrarySortFilterModel::LibrarySortFilterModel(QObject* parent) : QSortFilterProxyModel(parent) {
    collator_.setCaseSensitivity(Qt::CaseInsensitive);
    collator_.setNumericMode(true);
    setSortRole(LibraryModel::SortRole);
    setFilterKeyColumn(LibraryModel::NameColumn);
    setFilterCaseSensitivity(Qt::CaseInsensitive);
}

void LibrarySortFilterModel::setCollection(const QString& folder) {
    if (folder == collection_) return;
    collection_ = folder;
    invalidateRowsFilter();
}

bool LibrarySortFilterModel::filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const {
    if (!collection_.isEmpty()) {
        const QString folder =
            sourceModel()->index(sourceRow, 0, sourceParent).data(LibraryModel::CollectionRole).toString();
        if (folder != collection_ && !folder.startsWith(collection_ + QLatin1Char('/'))) return false;
    }
    return QSortFilterProxyModel::filterAcceptsRow(sourceRow, sourceParent);
}

bool LibrarySortFilterModel::lessThan(const QModelIndex& left, const QModelIndex& right) const {
    const QVariant l = left.data(sortRole()), r = right.data(sortRole());
    if (l.typeId() == QMetaType::QString && r.typeId() == QMetaType::QString)
        return collator_.compare(l.toString(), r.toString()) < 0;
    return QSortFilterProxyModel::lessThan(left, right);
}

}  // namespace folio::ui
