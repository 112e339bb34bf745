#pragma once
// The error dialog of a window or panel: one at a time, the latest (a new
// error closes the one showing), opened with open(), not exec(), so no
// nested event loop runs and the work behind it keeps reporting.
//
// Thread rules: UI thread only.

#include <QPointer>
#include <QString>

class QMessageBox;
class QWidget;

namespace folio::ui {

class ErrorBox {
public:
    // `objectName`: what tests find the dialog by.
    explicit ErrorBox(QString objectName = QStringLiteral("errorBox")) : objectName_(std::move(objectName)) {}

    // `details`, when given, go under Show Details.
    void show(QWidget* parent, const QString& title, const QString& text, const QString& details = {});

private:
    const QString objectName_;
    QPointer<QMessageBox> box_;
};

}  // namespace folio::ui
