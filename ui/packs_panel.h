#pragma once
// The Packs panel: the domain packs this Folio can use (built in, and
// installed in a pack store), what each holds and whether it fits the chat
// model, and the actions `folio pack install|verify|remove|log` take on the
// command line. Install is two steps: a dry run that makes every install
// check and writes nothing outside the store's staging folder, shown to the
// user; then, once confirmed, the real install.
//
// Thread rules:
// - PackTableModel: UI thread only; it holds what the panel last read and
//   reads nothing itself, so a test can fill it with any rows.
// - PacksPanel: constructed, used and destroyed on the UI thread. Every
//   PackStore call, pack content read and chat model probe runs on a QThread
//   the panel owns, one job at a time in request order; results come back as
//   queued calls on the UI thread. The panel's buttons are disabled while a
//   job is pending. The destructor waits for the running job to end.

#include <QAbstractTableModel>
#include <QList>
#include <QString>
#include <QStringList>
#include <QThread>
#include <QWidget>

#include <filesystem>
#include <memory>
#include <vector>

#include "ui/error_box.h"

class QLabel;
class QPushButton;
class QTableView;

namespace folio::ui {

class ChatModelProbe;       // packs_panel.cpp: what the jobs know of the chat model
struct PackInstallCheck;    // packs_panel.cpp: a dry run's result

enum class PackState { BuiltIn, Verified, Modified };

// Whether a pack, or one adapter of it, fits the chat model.
enum class PackFit {
    Any,         // the pack names no base model and carries no adapter
    Fits,
    Partly,      // some of its adapters fit, not all
    DoesNotFit,
    Unknown,     // no chat model set, or it cannot be read
};

struct PackAdapterInfo {
    QString file;    // the adapter's file name
    PackFit fit = PackFit::Unknown;
    QString reason;  // why it does not fit, or why that is unknown; empty when it fits
};

// One pack as the table shows it; everything is read when the panel refreshes.
struct PackRow {
    QString name;
    QString version;            // installed packs only: built-in ones have no manifest
    quint64 sequence = 0;
    QString domain;
    bool builtIn = false;
    QString keyId;              // the key that signed it, 16 hex digits
    QString installedAt;        // UTC, ISO 8601
    PackState state = PackState::BuiltIn;
    QStringList problems;       // what verification found wrong, when Modified
    QString description;
    int schemaFields = 0;       // properties of the extraction schema
    int glossaryEntries = 0;
    QList<PackAdapterInfo> adapters;
    PackFit fit = PackFit::Unknown;
    QString fitText;            // the fit as a phrase, with the reason when it does not fit
    QString contentError;       // the pack's content could not be read; the fields above may be empty
};

class PackTableModel final : public QAbstractTableModel {
    Q_OBJECT

public:
    enum Column { NameColumn, VersionColumn, DomainColumn, SourceColumn, SignerColumn, InstalledColumn,
                  StateColumn, FitColumn, ColumnCount };
    enum Role {
        NameRole = Qt::UserRole + 1,  // the pack's name
        StateRole,                    // PackState as int
        FitRole,                      // PackFit as int
        BuiltInRole,                  // bool
    };

    explicit PackTableModel(QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    void setRows(std::vector<PackRow> rows);
    const PackRow& pack(int row) const { return rows_.at(static_cast<std::size_t>(row)); }
    // The row of the pack of that name, or -1.
    int rowOfName(const QString& name) const;
    // A verification's result for an installed pack.
    void setProblems(const QString& name, const QStringList& problems);

private:
    std::vector<PackRow> rows_;
};

class PacksPanel final : public QWidget {
    Q_OBJECT

public:
    // `storeDirectory` is normally packs::PackStore::default_directory(): the
    // built-in packs shown are those app::pack_names() lists that the store
    // does not hold. `chatModelPath` (a GGUF file, or empty for none) is the
    // model installs are checked against and the fit column judges.
    explicit PacksPanel(std::filesystem::path storeDirectory, QString chatModelPath, QWidget* parent = nullptr);
    ~PacksPanel() override;

    void setChatModel(const QString& path);
    // Dry run, confirmation dialog, install: the Install button's flow after
    // the file dialog, and the drop's.
    void installFile(const QString& path);

    // A job is running or queued.
    bool isBusy() const { return pendingJobs_ > 0; }
    PackTableModel* model() const { return model_; }

public slots:
    void refresh();

signals:
    // After an install or a removal, once the table shows it.
    void packsChanged();

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    // Runs work() on the panel's thread, then done(result) on the UI thread.
    template <typename Work, typename Done>
    void runJob(Work work, Done done);

    void chooseFile();
    void confirmInstall(const QString& path, const PackInstallCheck& check);
    void install(const QString& path, bool allowDowngrade);
    void verifySelected();
    void confirmRemoveSelected();
    void showLog();

    // A listing read by a job: the table keeps its selection by name; the
    // status line says `done`, or how many packs there are.
    void showPacks(std::vector<PackRow> rows, const QString& error, const QString& done);
    // The selected pack's row in the model, or -1.
    int selectedRow() const;
    void updateActions();
    void updateDetails();
    void showError(const QString& title, const QString& text);
    void showMessage(const char* objectName, const QString& title, const QString& text, bool warning = false);

    const std::filesystem::path storeDirectory_;
    QString chatModel_;
    PackTableModel* model_ = nullptr;

    QTableView* table_ = nullptr;
    QLabel* details_ = nullptr;
    QLabel* status_ = nullptr;
    QPushButton* installButton_ = nullptr;
    QPushButton* verifyButton_ = nullptr;
    QPushButton* removeButton_ = nullptr;
    QPushButton* logButton_ = nullptr;
    ErrorBox errorBox_{QStringLiteral("packErrorBox")};

    int pendingJobs_ = 0;
    QThread thread_;
    QObject* threadContext_ = nullptr;             // lives on thread_; jobs are posted to it
    std::unique_ptr<ChatModelProbe> chatProbe_;    // used by jobs only, on thread_
};

}  // namespace folio::ui
