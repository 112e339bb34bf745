#include "ui/ask_panel.h"

#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QScrollBar>
#include <QTextBrowser>
#include <QTimer>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>

#include "ui/pack_combo_box.h"

namespace folio::ui {
namespace {

enum Scope { WholeLibrary, SelectedDocuments };

bool darkPalette(const QWidget* widget) { return widget->palette().color(QPalette::Base).lightness() < 128; }

QString escaped(const std::string& text) { return QString::fromStdString(text).toHtmlEscaped(); }

// "[1]", "[1, 3]" and "[1][2]" as the model writes its markers.
const QRegularExpression& citationMarker() {
    static const QRegularExpression marker(QStringLiteral("\\[(\\d+(?:\\s*,\\s*\\d+)*)\\]"));
    return marker;
}

QString citeUrl(int answer, int number, int sentence) {
    return QStringLiteral("cite:%1/%2/%3").arg(answer).arg(number).arg(sentence);
}

}  // namespace

AskPanel::AskPanel(AssistantWorker& worker, QWidget* parent) : QWidget(parent), worker_(worker) {
    transcript_ = new QTextBrowser(this);
    transcript_->setObjectName(QStringLiteral("transcript"));
    transcript_->setOpenLinks(false);
    transcript_->setPlaceholderText(
        tr("Ask a question about your documents. Answers cite their sources as [n]: click one to see the page."));
    connect(transcript_, &QTextBrowser::anchorClicked, this, &AskPanel::onLinkClicked);

    question_ = new QLineEdit(this);
    question_->setObjectName(QStringLiteral("question"));
    question_->setPlaceholderText(tr("Ask about the library…"));
    question_->setClearButtonEnabled(true);
    connect(question_, &QLineEdit::returnPressed, this, &AskPanel::submit);
    connect(question_, &QLineEdit::textChanged, this, &AskPanel::updateControls);

    askButton_ = new QPushButton(tr("&Ask"), this);
    askButton_->setObjectName(QStringLiteral("askButton"));
    askButton_->setDefault(true);
    connect(askButton_, &QPushButton::clicked, this, &AskPanel::submit);

    stopButton_ = new QPushButton(tr("&Stop"), this);
    stopButton_->setObjectName(QStringLiteral("stopButton"));
    stopButton_->setShortcut(Qt::Key_Escape);
    stopButton_->setToolTip(tr("Stop the answer (Esc)"));
    connect(stopButton_, &QPushButton::clicked, this, &AskPanel::stop);

    newButton_ = new QPushButton(tr("&New Conversation"), this);
    newButton_->setObjectName(QStringLiteral("newConversationButton"));
    newButton_->setToolTip(tr("Forget the conversation so far: the next question starts afresh"));
    connect(newButton_, &QPushButton::clicked, this, &AskPanel::newConversation);

    scope_ = new QComboBox(this);
    scope_->setObjectName(QStringLiteral("scope"));
    scope_->addItem(tr("Whole library"));
    scope_->addItem(tr("Selected documents (none)"));
    scope_->setToolTip(tr("Which documents the answer may come from"));
    connect(scope_, &QComboBox::currentIndexChanged, this, &AskPanel::updateControls);

    pack_ = new PackComboBox(/*offerNoPack=*/true, this);
    pack_->setObjectName(QStringLiteral("pack"));
    pack_->setToolTip(tr("A domain pack adds its glossary to the search and its adapter to the model"));

    renderTimer_ = new QTimer(this);
    renderTimer_->setSingleShot(true);
    renderTimer_->setInterval(40);
    connect(renderTimer_, &QTimer::timeout, this, &AskPanel::render);

    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("askStatus"));
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* options = new QHBoxLayout;
    options->addWidget(new QLabel(tr("Search:"), this));
    options->addWidget(scope_);
    options->addWidget(new QLabel(tr("Pack:"), this));
    options->addWidget(pack_);
    options->addStretch();
    options->addWidget(newButton_);

    auto* input = new QHBoxLayout;
    input->addWidget(question_, 1);
    input->addWidget(askButton_);
    input->addWidget(stopButton_);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(options);
    layout->addWidget(transcript_, 1);
    layout->addWidget(status_);
    layout->addLayout(input);

    connect(&worker_, &AssistantWorker::answerPiece, this, &AskPanel::onPiece);
    connect(&worker_, &AssistantWorker::answerReady, this, &AskPanel::onAnswer);
    connect(&worker_, &AssistantWorker::failed, this, &AskPanel::onFailed);
    connect(&worker_, &AssistantWorker::jobFinished, this, &AskPanel::onFinished);
    updateControls();
}

void AskPanel::setSelectedDocuments(const QList<qint64>& docIds, const QStringList& names) {
    selectedDocIds_ = docIds;
    scope_->setItemText(SelectedDocuments, docIds.isEmpty()     ? tr("Selected documents (none)")
                                           : docIds.size() == 1 ? tr("Selected document: %1").arg(names.value(0))
                                                                : tr("%n selected documents", nullptr, int(docIds.size())));
    updateControls();
}

void AskPanel::setPack(const QString& pack) { pack_->setPack(pack); }

void AskPanel::refreshPacks() {
    if (const QString error = pack_->refresh(); !error.isEmpty()) status_->setText(error);
}

void AskPanel::submit() { ask(question_->text()); }

void AskPanel::ask(const QString& text) {
    const QString question = text.simplified();
    if (question.isEmpty() || isAnswering()) return;
    AskRequest request;
    request.question = question;
    request.pack = pack_->pack();
    if (scope_->currentIndex() == SelectedDocuments) {
        if (selectedDocIds_.isEmpty()) {
            status_->setText(tr("Select documents in the library first, or search the whole library."));
            return;
        }
        request.docIds = selectedDocIds_;
    }
    request.followUp = conversationOpen_;
    conversationOpen_ = true;
    job_ = worker_.requestAsk(request);
    turns_.append({question, {}, std::nullopt, {}});
    question_->clear();
    status_->setText(tr("Searching and reading…"));
    render();
    updateControls();
    emit answeringChanged(true);
}

void AskPanel::stop() {
    if (isAnswering()) {
        worker_.cancel(job_);
        status_->setText(tr("Stopping…"));
    }
}

void AskPanel::newConversation() {
    if (isAnswering()) return;
    turns_.clear();
    answers_.clear();
    conversationOpen_ = false;
    status_->clear();
    render();
    updateControls();
}

void AskPanel::onPiece(JobId job, const QString& piece) {
    if (job != job_ || turns_.isEmpty()) return;
    Turn& turn = turns_.last();
    if (turn.streamed.isEmpty()) status_->setText(tr("Answering…"));
    turn.streamed += piece;
    if (!renderTimer_->isActive()) renderTimer_->start();
}

void AskPanel::onAnswer(JobId job, const app::Answer& answer) {
    if (job != job_ || turns_.isEmpty()) return;
    answers_.push_back(answer);
    turns_.last().answer = static_cast<int>(answers_.size()) - 1;
    status_->setText(answerStatus(answer));
    render();
}

void AskPanel::onFailed(JobId job, const QString& error) {
    if (job != job_ || turns_.isEmpty()) return;
    turns_.last().error = error;
    status_->setText(error);
    // The worker's conversation may not hold this question: start afresh.
    conversationOpen_ = false;
    render();
}

void AskPanel::onFinished(JobId job) {
    if (job != job_) return;
    job_ = 0;
    updateControls();
    emit answeringChanged(false);
    question_->setFocus();
}

void AskPanel::onLinkClicked(const QUrl& url) {
    if (url.scheme() != QLatin1String("cite")) return;
    const QStringList parts = url.path().split(QLatin1Char('/'));
    if (parts.size() != 3) return;
    const int answerIndex = parts[0].toInt(), number = parts[1].toInt(), sentence = parts[2].toInt();
    if (answerIndex < 0 || answerIndex >= static_cast<int>(answers_.size())) return;
    const app::Citation* found = nullptr;
    for (const app::Citation& citation : answers_[static_cast<std::size_t>(answerIndex)].citations) {
        if (citation.number != number) continue;
        if (citation.sentence == sentence) {
            found = &citation;
            break;
        }
        if (!found) found = &citation;
    }
    if (found) {
        emit citationActivated(found->doc_id, found->page, QString::fromStdString(found->quote));
        return;
    }
    // A source the answer lists but no sentence cites: its chunk's first page.
    for (const app::Source& source : answers_[static_cast<std::size_t>(answerIndex)].sources)
        if (source.number == number) emit citationActivated(source.hit.doc_id, source.hit.page, QString());
}

QString answerStatus(const app::Answer& answer) {
    const int unsupported = answer.unsupported_sentences();
    QString note = AskPanel::tr("%1 sources, %2 answer tokens, %3 s")
                       .arg(answer.sources.size())
                       .arg(answer.timings.answer_tokens)
                       .arg(answer.timings.total_seconds, 0, 'f', 1);
    if (unsupported > 0) note += AskPanel::tr("; %n sentence(s) not supported by the sources", nullptr, unsupported);
    switch (answer.stop_reason) {
    case engine::StopReason::Cancelled: return AskPanel::tr("Stopped. ") + note;
    case engine::StopReason::Repetition:
        return note + AskPanel::tr("; the model began repeating itself: the repeats were cut");
    case engine::StopReason::MaxTokens: return note + AskPanel::tr("; the answer stopped at the token limit");
    default: return note;
    }
}

QString answerHtml(const app::Answer& answer, int index, bool dark) {
    if (answer.not_found)
        return QStringLiteral("<p><i>%1</i></p>").arg(QString::fromUtf8(app::kNotFoundAnswer.data(),
                                                                          app::kNotFoundAnswer.size()).toHtmlEscaped());
    QString html = QStringLiteral("<p>");
    for (int s = 0; s < static_cast<int>(answer.sentences.size()); ++s) {
        const app::SentenceCheck& check = answer.sentences[static_cast<std::size_t>(s)];
        QString text = escaped(check.text);
        // Markers become links; the sentence's citations say where each points.
        text.replace(citationMarker(), QStringLiteral("\x01\\1\x02"));
        QString linked;
        for (const QString& part : text.split(QLatin1Char('\x01'))) {
            const int close = part.indexOf(QLatin1Char('\x02'));
            if (close < 0) {
                linked += part;
                continue;
            }
            QStringList links;
            for (const QString& n : part.left(close).split(QLatin1Char(','))) {
                const int number = n.trimmed().toInt();
                links << QStringLiteral("<a href=\"%1\">[%2]</a>").arg(citeUrl(index, number, s)).arg(number);
            }
            linked += links.join(QString()) + part.mid(close + 1);
        }
        if (check.verdict == app::SentenceVerdict::Attributed && !check.citations.empty())
            linked += QStringLiteral(" <a href=\"%1\" title=\"%2\">[%3]</a>")
                          .arg(citeUrl(index, check.citations.front(), s),
                               AskPanel::tr("The model cited nothing here; Folio found this source"))
                          .arg(check.citations.front());
        if (check.verdict == app::SentenceVerdict::Unsupported) {
            const QString why = AskPanel::tr("Not supported by the sources: %1").arg(escaped(check.reason));
            html += QStringLiteral("<span style=\"background-color:%1\" title=\"%2\">%3</span> "
                                   "<span style=\"color:%4\" title=\"%2\">&#9888;</span> ")
                        .arg(dark ? QStringLiteral("#5c2b29") : QStringLiteral("#fde2e1"), why, linked,
                             dark ? QStringLiteral("#f2b8b5") : QStringLiteral("#b3261e"));
        } else {
            html += linked + QLatin1Char(' ');
        }
    }
    html += QStringLiteral("</p>");
    // The sources the answer cites, in number order, each a link too.
    std::vector<const app::Citation*> cited;
    for (const app::Citation& citation : answer.citations) {
        bool seen = false;
        for (const app::Citation* c : cited) seen = seen || c->number == citation.number;
        if (!seen) cited.push_back(&citation);
    }
    std::sort(cited.begin(), cited.end(), [](auto* a, auto* b) { return a->number < b->number; });
    if (!cited.empty()) {
        html += QStringLiteral("<p style=\"margin-left:12px\"><small>");
        for (const app::Citation* citation : cited)
            html += QStringLiteral("<a href=\"%1\">[%2] %3, p. %4</a><br>")
                        .arg(citeUrl(index, citation->number, citation->sentence))
                        .arg(citation->number)
                        .arg(QFileInfo(QString::fromStdString(citation->path)).fileName().toHtmlEscaped())
                        .arg(citation->page);
        html += QStringLiteral("</small></p>");
    }
    return html;
}

void AskPanel::render() {
    renderTimer_->stop();
    QScrollBar* bar = transcript_->verticalScrollBar();
    const bool atBottom = bar->value() >= bar->maximum() - 4;
    const QString muted = palette().color(QPalette::PlaceholderText).name();
    QString html;
    for (const Turn& turn : turns_) {
        html += QStringLiteral("<p style=\"margin-top:12px\"><b>%1</b></p>").arg(turn.question.toHtmlEscaped());
        if (turn.answer)
            html += answerHtml(answers_[static_cast<std::size_t>(*turn.answer)], *turn.answer, darkPalette(this));
        else if (!turn.streamed.isEmpty())
            html += QStringLiteral("<p>%1</p>").arg(turn.streamed.toHtmlEscaped());
        if (!turn.error.isEmpty())
            html += QStringLiteral("<p style=\"color:%1\">%2</p>").arg(muted, turn.error.toHtmlEscaped());
    }
    transcript_->setHtml(html);
    if (atBottom) bar->setValue(bar->maximum());
}

void AskPanel::updateControls() {
    const bool answering = isAnswering();
    askButton_->setEnabled(!answering && !question_->text().trimmed().isEmpty());
    stopButton_->setEnabled(answering);
    newButton_->setEnabled(!answering && !turns_.isEmpty());
    scope_->setEnabled(!answering);
    pack_->setEnabled(!answering && !conversationOpen_);
    askButton_->setText(conversationOpen_ ? tr("&Follow Up") : tr("&Ask"));
}

}  // namespace folio::ui
