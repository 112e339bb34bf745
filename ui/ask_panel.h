#pragma once
// The chat panel: questions to the library, answers streamed as the model
// writes them, then rewritten once checked: each [n] becomes a link to its
// source's page and quote, and a sentence the check could not support is
// marked with the reason. Follow-ups continue the conversation; New starts
// another. The model runs on the AssistantWorker; the panel only posts and
// renders.
//
// Thread rules: UI thread only.

#include <QList>
#include <QString>
#include <QWidget>

#include <optional>
#include <vector>

#include "app/ask.h"
#include "ui/assistant_worker.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTextBrowser;
class QTimer;
class QUrl;

namespace folio::ui {

class PackComboBox;

// A checked answer as the transcript shows it: each [n] a link
// "cite:ANSWER/n/SENTENCE", a sentence the check could not support on a
// tinted background with a warning sign whose tooltip gives the reason,
// then the cited sources as links. `answerIndex` numbers the links; `dark`
// picks the tints for a dark palette.
QString answerHtml(const app::Answer& answer, int answerIndex, bool dark);

// The status line under a finished answer: its sources, tokens and time,
// the sentences the check could not support, and why it ended early.
QString answerStatus(const app::Answer& answer);

class AskPanel final : public QWidget {
    Q_OBJECT

public:
    explicit AskPanel(AssistantWorker& worker, QWidget* parent = nullptr);

    // The documents the "Selected documents" scope asks about.
    void setSelectedDocuments(const QList<qint64>& docIds, const QStringList& names);
    void setPack(const QString& pack);
    // Re-reads the pack names (after a pack is installed or removed).
    void refreshPacks();

    bool isAnswering() const { return job_ != 0; }
    // The conversation's answers, checked, oldest first.
    const std::vector<app::Answer>& answers() const { return answers_; }

public slots:
    // Asks `question` (a follow-up when a conversation is open).
    void ask(const QString& question);
    void stop();
    void newConversation();

signals:
    // A citation link was clicked: open the document at the page and highlight the quote.
    void citationActivated(qint64 docId, int page, const QString& quote);
    void answeringChanged(bool answering);

private:
    void submit();
    void onPiece(JobId job, const QString& piece);
    void onAnswer(JobId job, const app::Answer& answer);
    void onFailed(JobId job, const QString& error);
    void onFinished(JobId job);
    void onLinkClicked(const QUrl& url);
    void render();
    void updateControls();

    AssistantWorker& worker_;
    QTextBrowser* transcript_ = nullptr;
    QLineEdit* question_ = nullptr;
    QPushButton* askButton_ = nullptr;
    QPushButton* stopButton_ = nullptr;
    QPushButton* newButton_ = nullptr;
    QComboBox* scope_ = nullptr;
    PackComboBox* pack_ = nullptr;
    QLabel* status_ = nullptr;
    // Pieces arrive tens a second; the transcript is redrawn at most every
    // few tens of milliseconds, however long the conversation.
    QTimer* renderTimer_ = nullptr;

    QList<qint64> selectedDocIds_;

    // The conversation: each question, and its checked answer once it came.
    struct Turn {
        QString question;
        QString streamed;               // the model's text so far, while it writes
        std::optional<int> answer;      // index into answers_
        QString error;
    };
    QList<Turn> turns_;
    std::vector<app::Answer> answers_;
    JobId job_ = 0;
    bool conversationOpen_ = false;
};

}  // namespace folio::ui
