#include "ui/packs_panel.h"

#include <QAbstractButton>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLocale>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QTableView>
#include <QTableWidget>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <optional>

#include "app/packs.h"
#include "domain_packs/base_model.h"
#include "domain_packs/pack_store.h"
#include "engine/gguf.h"
#include "engine/model.h"

namespace folio::ui {

namespace fs = std::filesystem;

// What the jobs know of the chat model, read once per path. A file replaced
// under the same path is read again only after the chat model changes to
// another path and back.
class ChatModelProbe {
public:
    void use(const QString& chatModel) {
        if (chatModel == path_) return;
        model_.reset();
        modelError_.clear();
        identity_.reset();
        identityHasWeights_ = false;
        identityError_.clear();
        path_ = chatModel;
    }

    const QString& path() const { return path_; }

    // The loaded model (its weights stay mapped, not read), or null with the
    // reason in `why`.
    const engine::Model* model(QString* why) {
        if (!model_ && modelError_.isEmpty()) {
            if (path_.isEmpty()) {
                modelError_ = PacksPanel::tr("no chat model is set");
            } else {
                try {
                    model_ = engine::load_model(engine::GgufFile::open(path_.toStdString()));
                } catch (const std::exception& e) {
                    modelError_ = PacksPanel::tr("cannot read the chat model: %1").arg(QString::fromUtf8(e.what()));
                }
            }
        }
        *why = modelError_;
        return model_.get();
    }

    // The model as pack manifests name base models; with its weights hash
    // (which reads the whole file) only when a manifest pins weights.
    const packs::BaseModel* baseModel(bool withWeights, QString* why) {
        if ((!identity_ || (withWeights && !identityHasWeights_)) && identityError_.isEmpty()) {
            if (path_.isEmpty()) {
                identityError_ = PacksPanel::tr("no chat model is set");
            } else {
                try {
                    identity_ = packs::identify_base_model(path_.toStdString(), withWeights);
                    identityHasWeights_ = withWeights;
                } catch (const std::exception& e) {
                    identityError_ = QString::fromUtf8(e.what());
                }
            }
        }
        *why = identityError_;
        return identity_ ? &*identity_ : nullptr;
    }

private:
    QString path_;
    std::unique_ptr<engine::Model> model_;
    QString modelError_;
    std::optional<packs::BaseModel> identity_;
    bool identityHasWeights_ = false;
    QString identityError_;
};

struct PackInstallCheck {
    QString error;  // the check that refused the pack, one line
    QString label;  // "name version (sequence n)"
    QString keyId;
    QString baseModelFit;
    int files = 0;
    quint64 bytes = 0;
    bool downgrade = false;
    QString replaced;  // the installed release it takes the place of
};

namespace {

struct PackListing {
    std::vector<PackRow> rows;
    QString error;
};

struct StoreChange {
    QString error;
    QString done;  // what changed, for the status line
    PackListing listing;
};

struct Verification {
    QStringList problems;
    QString error;
};

struct EventLog {
    std::vector<packs::StoreEvent> events;
    QString error;
};

QString fromStd(const std::string& text) { return QString::fromStdString(text); }

// "1 file", "3 files": Folio ships no translations that would pluralize %n.
QString count(int n, const char* one, const char* many) {
    return (n == 1 ? PacksPanel::tr(one) : PacksPanel::tr(many)).arg(n);
}

QString oneLine(const std::exception& e) { return QString::fromUtf8(e.what()).simplified(); }

int schemaFieldCount(const nlohmann::ordered_json& schema) {
    const auto properties = schema.find("properties");
    return properties != schema.end() && properties->is_object() ? static_cast<int>(properties->size()) : 0;
}

void readContent(PackRow& row, const app::PackContent& content, ChatModelProbe& probe) {
    row.description = fromStd(content.description);
    if (row.version.isEmpty()) row.version = fromStd(content.version);
    if (row.domain.isEmpty()) row.domain = fromStd(content.domain);
    row.schemaFields = schemaFieldCount(content.schema);
    row.glossaryEntries = static_cast<int>(content.glossary.size());
    if (content.adapters.empty()) return;
    QString why;
    const engine::Model* model = probe.model(&why);
    for (const app::PackAdapter& adapter : content.adapters) {
        PackAdapterInfo info;
        info.file = fromStd(fs::path(adapter.location).filename().string());
        if (!model) {
            info.reason = why;
        } else {
            // One adapter at a time: load_pack_adapters names the misfits but
            // not which of several they were.
            app::PackContent one = content;
            one.adapters = {adapter};
            try {
                const app::PackAdapters loaded = app::load_pack_adapters(one, *model);
                info.fit = loaded.skipped.empty() ? PackFit::Fits : PackFit::DoesNotFit;
                if (!loaded.skipped.empty()) info.reason = fromStd(loaded.skipped.front());
            } catch (const std::exception& e) {
                info.fit = PackFit::DoesNotFit;
                info.reason = oneLine(e);
            }
        }
        row.adapters.push_back(info);
    }
}

void judgeFit(PackRow& row, const std::vector<packs::BaseModel>& baseModels, ChatModelProbe& probe) {
    if (!baseModels.empty()) {
        const bool pinned = std::any_of(baseModels.begin(), baseModels.end(),
                                        [](const packs::BaseModel& m) { return m.weights_sha256.has_value(); });
        QString why;
        const packs::BaseModel* model = probe.baseModel(pinned, &why);
        if (!model) {
            row.fit = PackFit::Unknown;
            row.fitText = PacksPanel::tr("unknown: %1").arg(why);
            return;
        }
        if (std::none_of(baseModels.begin(), baseModels.end(),
                         [&](const packs::BaseModel& wanted) { return packs::base_model_fits(wanted, *model); })) {
            row.fit = PackFit::DoesNotFit;
            row.fitText = PacksPanel::tr("does not fit: made for another base model");
            return;
        }
    }
    if (row.adapters.isEmpty()) {
        row.fit = baseModels.empty() ? PackFit::Any : PackFit::Fits;
        row.fitText = baseModels.empty() ? PacksPanel::tr("any model") : PacksPanel::tr("fits");
        return;
    }
    int fitting = 0;
    for (const PackAdapterInfo& adapter : row.adapters) {
        if (adapter.fit == PackFit::Unknown) {
            row.fit = PackFit::Unknown;
            row.fitText = PacksPanel::tr("unknown: %1").arg(adapter.reason);
            return;
        }
        fitting += adapter.fit == PackFit::Fits;
    }
    const int total = static_cast<int>(row.adapters.size());
    row.fit = fitting == total ? PackFit::Fits : fitting == 0 ? PackFit::DoesNotFit : PackFit::Partly;
    row.fitText = fitting == total ? PacksPanel::tr("fits")
                  : fitting == 0   ? PacksPanel::tr("does not fit: no adapter fits the chat model")
                                   : PacksPanel::tr("%1 of %2 adapters fit").arg(fitting).arg(total);
}

// Every pack, installed ones verified against their signed manifests (so the
// state column says what is on disk now, not what was there at install).
PackListing readPacks(const fs::path& storeDirectory, ChatModelProbe& probe) {
    PackListing listing;
    try {
        const packs::PackStore store(storeDirectory);
        const std::vector<packs::InstalledPack> installed = store.list();
        for (const packs::InstalledPack& pack : installed) {
            PackRow row;
            const packs::PackManifest& manifest = pack.manifest;
            row.name = fromStd(manifest.name);
            row.version = fromStd(manifest.version);
            row.sequence = manifest.sequence;
            row.domain = fromStd(manifest.domain);
            row.keyId = fromStd(pack.key_id);
            row.installedAt = fromStd(pack.installed_at);
            for (const std::string& problem : store.verify(manifest.name)) row.problems << fromStd(problem);
            row.state = row.problems.isEmpty() ? PackState::Verified : PackState::Modified;
            try {
                readContent(row, app::load_pack_folder(pack.directory, manifest.name), probe);
            } catch (const app::PackError& e) {
                row.contentError = oneLine(e);
            }
            judgeFit(row, manifest.base_models, probe);
            listing.rows.push_back(std::move(row));
        }
        for (const std::string& name : app::pack_names()) {
            const bool shadowed = std::any_of(installed.begin(), installed.end(),
                                              [&](const packs::InstalledPack& p) { return p.manifest.name == name; });
            if (shadowed) continue;
            PackRow row;
            row.name = fromStd(name);
            row.builtIn = true;
            row.state = PackState::BuiltIn;
            try {
                readContent(row, app::load_pack(name), probe);
            } catch (const app::PackError& e) {
                row.contentError = oneLine(e);
            }
            judgeFit(row, {}, probe);
            listing.rows.push_back(std::move(row));
        }
    } catch (const std::exception& e) {
        listing.rows.clear();
        listing.error = oneLine(e);
    }
    std::sort(listing.rows.begin(), listing.rows.end(),
              [](const PackRow& a, const PackRow& b) { return a.name < b.name; });
    return listing;
}

// One change to the store (install, remove), on the job thread; then the
// packs as they are now, judged against `chatModel`. `change` returns what
// it did, for the status line; its exception is the refusal.
StoreChange changeStore(const fs::path& directory, const QString& chatModel, ChatModelProbe& probe,
                        const std::function<QString(packs::PackStore&)>& change) {
    StoreChange result;
    try {
        packs::PackStore store(directory);
        result.done = change(store);
    } catch (const std::exception& e) {
        result.error = oneLine(e);
        return result;
    }
    probe.use(chatModel);
    result.listing = readPacks(directory, probe);
    return result;
}

// The check install runs on the staged folder, as `folio pack install`
// does: Folio must be able to use what it activates.
void checkPackContent(const fs::path& staged, const packs::PackManifest& manifest) {
    try {
        (void)app::load_pack_folder(staged, manifest.name);
    } catch (const app::PackError& e) {
        throw packs::PackError("content", e.what());
    }
}

packs::InstallOptions installOptions(const QString& chatModel, bool dryRun, bool allowDowngrade) {
    packs::InstallOptions options;
    options.dry_run = dryRun;
    options.allow_downgrade = allowDowngrade;
    options.check_content = checkPackContent;
    if (!chatModel.isEmpty()) options.base_model = fs::path(chatModel.toStdString());
    return options;
}

PackInstallCheck checkInstall(const fs::path& storeDirectory, const QString& file, const QString& chatModel) {
    PackInstallCheck check;
    try {
        packs::PackStore store(storeDirectory);
        // A downgrade passes the dry run so that the dialog can warn of it;
        // the real install allows it only once the user has seen that.
        const packs::InstallResult result =
            store.install(file.toStdString(), installOptions(chatModel, true, true));
        const packs::PackManifest& manifest = result.pack.manifest;
        check.label = fromStd(packs::named_release_label(manifest));
        check.keyId = fromStd(result.pack.key_id);
        check.files = static_cast<int>(manifest.files.size());
        for (const packs::PackFile& f : manifest.files) check.bytes += f.size;
        check.downgrade = result.downgrade;
        if (result.replaced) check.replaced = fromStd(packs::release_label(*result.replaced));
        check.baseModelFit =
            manifest.base_models.empty()
                ? PacksPanel::tr("names no base model; it works with any chat model")
                : PacksPanel::tr("made for the chat model %1").arg(QFileInfo(chatModel).fileName());
    } catch (const std::exception& e) {
        check.error = oneLine(e);
    }
    return check;
}

QString stateText(const PackRow& row) {
    switch (row.state) {
        case PackState::BuiltIn: return PacksPanel::tr("built-in");
        case PackState::Verified: return PacksPanel::tr("verified");
        case PackState::Modified: return count(int(row.problems.size()), "modified (%1 problem)", "modified (%1 problems)");
    }
    return {};
}

QString adapterFitText(const PackAdapterInfo& adapter) {
    switch (adapter.fit) {
        case PackFit::Fits: return PacksPanel::tr("fits the chat model");
        case PackFit::Unknown: return PacksPanel::tr("fit unknown: %1").arg(adapter.reason);
        default: return adapter.reason.isEmpty() ? PacksPanel::tr("does not fit the chat model") : adapter.reason;
    }
}

QStringList packFiles(const QMimeData* mime) {
    QStringList files;
    if (!mime->hasUrls()) return files;
    for (const QUrl& url : mime->urls())
        if (url.isLocalFile() && url.toLocalFile().endsWith(QLatin1String(".foliopack"), Qt::CaseInsensitive))
            files << url.toLocalFile();
    return files;
}

}  // namespace

PackTableModel::PackTableModel(QObject* parent) : QAbstractTableModel(parent) {}

int PackTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int PackTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant PackTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount()) return {};
    const PackRow& row = pack(index.row());
    switch (role) {
        case NameRole: return row.name;
        case StateRole: return static_cast<int>(row.state);
        case FitRole: return static_cast<int>(row.fit);
        case BuiltInRole: return row.builtIn;
        case Qt::ToolTipRole:
            if (index.column() == StateColumn && !row.problems.isEmpty()) return row.problems.join(QLatin1Char('\n'));
            if (index.column() == FitColumn) return row.fitText;
            return row.description;
        case Qt::DisplayRole: break;
        default: return {};
    }
    switch (index.column()) {
        case NameColumn: return row.name;
        case VersionColumn: return row.builtIn ? row.version : tr("%1 (sequence %2)").arg(row.version).arg(row.sequence);
        case DomainColumn: return row.domain;
        case SourceColumn: return row.builtIn ? tr("built-in") : tr("installed");
        case SignerColumn: return row.keyId;
        case InstalledColumn: return row.installedAt;
        case StateColumn: return stateText(row);
        case FitColumn: return row.fitText;
        default: return {};
    }
}

QVariant PackTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
        case NameColumn: return tr("Name");
        case VersionColumn: return tr("Version");
        case DomainColumn: return tr("Domain");
        case SourceColumn: return tr("Source");
        case SignerColumn: return tr("Signed by");
        case InstalledColumn: return tr("Installed");
        case StateColumn: return tr("State");
        case FitColumn: return tr("Chat model");
        default: return {};
    }
}

void PackTableModel::setRows(std::vector<PackRow> rows) {
    beginResetModel();
    rows_ = std::move(rows);
    endResetModel();
}

int PackTableModel::rowOfName(const QString& name) const {
    for (std::size_t i = 0; i < rows_.size(); ++i)
        if (rows_[i].name == name) return static_cast<int>(i);
    return -1;
}

void PackTableModel::setProblems(const QString& name, const QStringList& problems) {
    const int row = rowOfName(name);
    if (row < 0 || rows_[static_cast<std::size_t>(row)].builtIn) return;
    PackRow& pack = rows_[static_cast<std::size_t>(row)];
    pack.problems = problems;
    pack.state = problems.isEmpty() ? PackState::Verified : PackState::Modified;
    emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
}

PacksPanel::PacksPanel(std::filesystem::path storeDirectory, QString chatModelPath, QWidget* parent)
    : QWidget(parent),
      storeDirectory_(std::move(storeDirectory)),
      chatModel_(std::move(chatModelPath)),
      model_(new PackTableModel(this)),
      threadContext_(new QObject),
      chatProbe_(std::make_unique<ChatModelProbe>()) {
    setAcceptDrops(true);

    table_ = new QTableView(this);
    table_->setObjectName(QStringLiteral("packsTable"));
    table_->setModel(model_);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setAlternatingRowColors(true);

    details_ = new QLabel(this);
    details_->setObjectName(QStringLiteral("packDetails"));
    details_->setWordWrap(true);
    details_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    details_->setAlignment(Qt::AlignTop | Qt::AlignLeft);

    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("packsStatus"));

    installButton_ = new QPushButton(tr("&Install from File…"), this);
    installButton_->setObjectName(QStringLiteral("installPackButton"));
    installButton_->setToolTip(tr("Install a signed .foliopack file; you can also drop one here"));
    verifyButton_ = new QPushButton(tr("&Verify"), this);
    verifyButton_->setObjectName(QStringLiteral("verifyPackButton"));
    verifyButton_->setToolTip(tr("Check the selected pack's files against its signed manifest"));
    removeButton_ = new QPushButton(tr("&Remove…"), this);
    removeButton_->setObjectName(QStringLiteral("removePackButton"));
    logButton_ = new QPushButton(tr("View &Log"), this);
    logButton_->setObjectName(QStringLiteral("packLogButton"));
    logButton_->setToolTip(tr("Installs, downgrades, removals and trusted keys, oldest first"));

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(installButton_);
    buttons->addWidget(verifyButton_);
    buttons->addWidget(removeButton_);
    buttons->addWidget(logButton_);
    buttons->addStretch(1);
    buttons->addWidget(status_);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(buttons);
    layout->addWidget(table_, 3);
    layout->addWidget(details_, 1);

    connect(installButton_, &QPushButton::clicked, this, &PacksPanel::chooseFile);
    connect(verifyButton_, &QPushButton::clicked, this, &PacksPanel::verifySelected);
    connect(removeButton_, &QPushButton::clicked, this, &PacksPanel::confirmRemoveSelected);
    connect(logButton_, &QPushButton::clicked, this, &PacksPanel::showLog);
    connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
        updateActions();
        updateDetails();
    });

    threadContext_->moveToThread(&thread_);
    thread_.setObjectName(QStringLiteral("folio-packs"));
    thread_.start();
    refresh();
}

// The running job ends first; those still queued are dropped with the
// context object they were posted to.
PacksPanel::~PacksPanel() {
    thread_.quit();
    thread_.wait();
    delete threadContext_;
}

template <typename Work, typename Done>
void PacksPanel::runJob(Work work, Done done) {
    ++pendingJobs_;
    updateActions();
    QMetaObject::invokeMethod(
        threadContext_,
        [this, work, done] {
            auto result = std::make_shared<decltype(work())>(work());
            // Queued to the panel: dropped if the panel is gone by then.
            QMetaObject::invokeMethod(
                this,
                [this, result, done] {
                    --pendingJobs_;
                    done(std::move(*result));
                    updateActions();
                },
                Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
}

void PacksPanel::setChatModel(const QString& path) {
    if (path == chatModel_) return;
    chatModel_ = path;
    refresh();
}

void PacksPanel::refresh() {
    status_->setText(tr("Reading packs…"));
    runJob([directory = storeDirectory_, probe = chatProbe_.get(), chatModel = chatModel_] {
               probe->use(chatModel);
               return readPacks(directory, *probe);
           },
           [this](PackListing listing) { showPacks(std::move(listing.rows), listing.error, {}); });
}

void PacksPanel::showPacks(std::vector<PackRow> rows, const QString& error, const QString& done) {
    const int row = selectedRow();
    const QString selected = row >= 0 ? model_->pack(row).name : QString();
    model_->setRows(std::move(rows));
    if (const int again = model_->rowOfName(selected); again >= 0) table_->selectRow(again);
    updateDetails();
    if (!error.isEmpty()) {
        status_->setText(tr("Cannot read the packs"));
        showError(tr("Cannot read the pack store"), error);
        return;
    }
    status_->setText(done.isEmpty() ? count(model_->rowCount(), "%1 pack", "%1 packs") : done);
}

void PacksPanel::chooseFile() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Install Pack"), QString(),
                                                      tr("Folio packs (*.foliopack);;All files (*)"));
    if (!path.isEmpty()) installFile(path);
}

void PacksPanel::installFile(const QString& path) {
    if (!QFileInfo(path).isFile()) {
        showError(tr("Cannot install the pack"), tr("There is no file %1.").arg(QDir::toNativeSeparators(path)));
        return;
    }
    status_->setText(tr("Checking %1…").arg(QFileInfo(path).fileName()));
    runJob([directory = storeDirectory_, path, chatModel = chatModel_] { return checkInstall(directory, path, chatModel); },
           [this, path](PackInstallCheck check) {
               if (!check.error.isEmpty()) {
                   status_->setText(tr("%1 was refused").arg(QFileInfo(path).fileName()));
                   showError(tr("Cannot install %1").arg(QFileInfo(path).fileName()), check.error);
                   return;
               }
               status_->clear();
               confirmInstall(path, check);
           });
}

void PacksPanel::confirmInstall(const QString& path, const PackInstallCheck& check) {
    const QLocale locale;
    QStringList lines;
    if (check.downgrade)
        lines << tr("Warning: this is a downgrade. It replaces the installed %1 with an older release; "
                    "the store's log will record it.").arg(check.replaced);
    else if (!check.replaced.isEmpty())
        lines << tr("It replaces the installed %1.").arg(check.replaced);
    lines << tr("Signed by key %1, which you trust.").arg(check.keyId)
          << tr("Base model: %1.").arg(check.baseModelFit)
          << tr("%1, %2 in all.").arg(count(check.files, "%1 file", "%1 files"), locale.formattedDataSize(qint64(check.bytes)))
          << tr("Every install check passed; nothing has changed yet.");

    auto* box = new QMessageBox(check.downgrade ? QMessageBox::Warning : QMessageBox::Question, tr("Install Pack"),
                                tr("Install %1?").arg(check.label), QMessageBox::Cancel, this);
    box->setObjectName(QStringLiteral("installConfirmBox"));
    box->setInformativeText(lines.join(QLatin1Char('\n')));
    QPushButton* installButton = box->addButton(tr("Install"), QMessageBox::AcceptRole);
    installButton->setObjectName(QStringLiteral("confirmInstallButton"));
    // A downgrade is not what Enter should do.
    if (check.downgrade) box->setDefaultButton(QMessageBox::Cancel);
    else box->setDefaultButton(installButton);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::buttonClicked, this,
            [this, installButton, path, downgrade = check.downgrade](QAbstractButton* clicked) {
                if (clicked == installButton) install(path, downgrade);
            });
    box->open();
}

void PacksPanel::install(const QString& path, bool allowDowngrade) {
    status_->setText(tr("Installing %1…").arg(QFileInfo(path).fileName()));
    runJob(
        [directory = storeDirectory_, path, chatModel = chatModel_, allowDowngrade, probe = chatProbe_.get()] {
            return changeStore(directory, chatModel, *probe, [&](packs::PackStore& store) {
                const packs::InstallResult result =
                    store.install(path.toStdString(), installOptions(chatModel, false, allowDowngrade));
                return PacksPanel::tr("Installed %1").arg(fromStd(packs::named_release_label(result.pack.manifest)));
            });
        },
        [this, path](StoreChange change) {
            if (!change.error.isEmpty()) {
                status_->setText(tr("%1 was refused").arg(QFileInfo(path).fileName()));
                showError(tr("Cannot install %1").arg(QFileInfo(path).fileName()), change.error);
                return;
            }
            showPacks(std::move(change.listing.rows), change.listing.error, change.done);
            emit packsChanged();
        });
}

void PacksPanel::verifySelected() {
    const int row = selectedRow();
    if (row < 0 || model_->pack(row).builtIn) return;
    const QString name = model_->pack(row).name;
    status_->setText(tr("Verifying %1…").arg(name));
    runJob(
        [directory = storeDirectory_, name] {
            Verification verification;
            try {
                for (const std::string& problem : packs::PackStore(directory).verify(name.toStdString()))
                    verification.problems << fromStd(problem);
            } catch (const std::exception& e) {
                verification.error = oneLine(e);
            }
            return verification;
        },
        [this, name](Verification verification) {
            if (!verification.error.isEmpty()) {
                status_->clear();
                showError(tr("Cannot verify %1").arg(name), verification.error);
                return;
            }
            model_->setProblems(name, verification.problems);
            updateDetails();
            if (verification.problems.isEmpty()) {
                status_->setText(tr("%1 verified").arg(name));
                showMessage("packVerifyBox", tr("Pack Verified"),
                            tr("Every file of %1 matches its signed manifest.").arg(name));
            } else {
                status_->setText(tr("%1 is modified").arg(name));
                showMessage("packVerifyBox", tr("Pack Modified"),
                            tr("%1 fails verification; install it again to repair it.\n\n%2")
                                .arg(name, verification.problems.join(QLatin1Char('\n'))),
                            true);
            }
        });
}

void PacksPanel::confirmRemoveSelected() {
    const int row = selectedRow();
    if (row < 0 || model_->pack(row).builtIn) return;
    const PackRow& pack = model_->pack(row);
    const QString name = pack.name;
    auto* box = new QMessageBox(QMessageBox::Question, tr("Remove Pack"),
                                tr("Remove the pack %1 %2?").arg(name, pack.version), QMessageBox::Cancel, this);
    box->setObjectName(QStringLiteral("confirmRemovePackBox"));
    box->setInformativeText(tr("Its files are deleted. A built-in pack of the same name, if there is one, "
                               "takes its place again."));
    QPushButton* remove = box->addButton(tr("Remove"), QMessageBox::DestructiveRole);
    remove->setObjectName(QStringLiteral("confirmRemovePackButton"));
    box->setDefaultButton(QMessageBox::Cancel);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::buttonClicked, this, [this, remove, name](QAbstractButton* clicked) {
        if (clicked != remove) return;
        status_->setText(tr("Removing %1…").arg(name));
        runJob(
            [directory = storeDirectory_, name, chatModel = chatModel_, probe = chatProbe_.get()] {
                return changeStore(directory, chatModel, *probe, [&](packs::PackStore& store) {
                    store.remove(name.toStdString());
                    return PacksPanel::tr("Removed %1").arg(name);
                });
            },
            [this, name](StoreChange change) {
                if (!change.error.isEmpty()) {
                    status_->clear();
                    showError(tr("Cannot remove %1").arg(name), change.error);
                    return;
                }
                showPacks(std::move(change.listing.rows), change.listing.error, change.done);
                emit packsChanged();
            });
    });
    box->open();
}

void PacksPanel::showLog() {
    runJob(
        [directory = storeDirectory_] {
            EventLog log;
            try {
                log.events = packs::PackStore(directory).events();
            } catch (const std::exception& e) {
                log.error = oneLine(e);
            }
            return log;
        },
        [this](EventLog log) {
            if (!log.error.isEmpty()) {
                showError(tr("Cannot read the pack log"), log.error);
                return;
            }
            auto* dialog = new QDialog(this);
            dialog->setObjectName(QStringLiteral("packLogDialog"));
            dialog->setWindowTitle(tr("Pack Log"));
            dialog->setAttribute(Qt::WA_DeleteOnClose);
            auto* table = new QTableWidget(static_cast<int>(log.events.size()), 4, dialog);
            table->setObjectName(QStringLiteral("packLogTable"));
            table->setHorizontalHeaderLabels({tr("When (UTC)"), tr("Event"), tr("Pack or key"), tr("Detail")});
            table->setEditTriggers(QAbstractItemView::NoEditTriggers);
            table->verticalHeader()->hide();
            table->horizontalHeader()->setStretchLastSection(true);
            for (int i = 0; i < static_cast<int>(log.events.size()); ++i) {
                const packs::StoreEvent& event = log.events[static_cast<std::size_t>(i)];
                const std::string* fields[] = {&event.at, &event.event, &event.name, &event.detail};
                for (int column = 0; column < 4; ++column)
                    table->setItem(i, column, new QTableWidgetItem(fromStd(*fields[column])));
            }
            table->resizeColumnsToContents();
            auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, dialog);
            connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::reject);
            auto* layout = new QVBoxLayout(dialog);
            if (log.events.empty()) layout->addWidget(new QLabel(tr("Nothing has been installed or removed yet."), dialog));
            layout->addWidget(table);
            layout->addWidget(buttons);
            dialog->resize(760, 360);
            dialog->open();
        });
}

int PacksPanel::selectedRow() const {
    const QModelIndexList rows = table_->selectionModel()->selectedRows();
    return rows.isEmpty() ? -1 : rows.front().row();
}

void PacksPanel::updateActions() {
    const bool idle = !isBusy();
    const int row = selectedRow();
    const bool installedSelected = row >= 0 && !model_->pack(row).builtIn;
    installButton_->setEnabled(idle);
    verifyButton_->setEnabled(idle && installedSelected);
    removeButton_->setEnabled(idle && installedSelected);
    logButton_->setEnabled(idle);
}

void PacksPanel::updateDetails() {
    const int row = selectedRow();
    if (row < 0) {
        details_->setText(tr("Select a pack to see what it holds. Drop a .foliopack file here to install it."));
        return;
    }
    const PackRow& pack = model_->pack(row);
    QStringList lines;
    lines << (pack.description.isEmpty() ? pack.name : tr("%1: %2").arg(pack.name, pack.description));
    if (!pack.contentError.isEmpty()) lines << tr("Cannot read its content: %1").arg(pack.contentError);
    lines << tr("Extraction schema: %1").arg(count(pack.schemaFields, "%1 field", "%1 fields"))
          << tr("Glossary: %1").arg(count(pack.glossaryEntries, "%1 entry", "%1 entries"));
    if (pack.adapters.isEmpty()) lines << tr("Adapters: none");
    for (const PackAdapterInfo& adapter : pack.adapters) lines << tr("Adapter %1: %2").arg(adapter.file, adapterFitText(adapter));
    lines << tr("Chat model: %1").arg(pack.fitText);
    if (!pack.problems.isEmpty()) lines << tr("Verification found:") << pack.problems;
    details_->setText(lines.join(QLatin1Char('\n')));
}

void PacksPanel::showError(const QString& title, const QString& text) {
    errorBox_.show(this, title, text);
}

void PacksPanel::showMessage(const char* objectName, const QString& title, const QString& text, bool warning) {
    auto* box = new QMessageBox(warning ? QMessageBox::Warning : QMessageBox::Information, title, text,
                                QMessageBox::Ok, this);
    box->setObjectName(QString::fromLatin1(objectName));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void PacksPanel::dragEnterEvent(QDragEnterEvent* event) {
    if (!packFiles(event->mimeData()).isEmpty()) event->acceptProposedAction();
}

void PacksPanel::dropEvent(QDropEvent* event) {
    const QStringList files = packFiles(event->mimeData());
    if (files.isEmpty()) return;
    event->acceptProposedAction();
    for (const QString& file : files) installFile(file);
}

}  // namespace folio::ui
