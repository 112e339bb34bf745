#pragma once
// The message box a window or panel is showing, as the UI suites look for
// their error and confirmation dialogs.

#include <QMessageBox>
#include <QString>
#include <QWidget>

namespace folio::test {

// The first visible QMessageBox under `parent` with that object name (any
// name when empty); null when none shows.
inline QMessageBox* visibleMessageBox(const QWidget& parent, const QString& objectName = {}) {
    for (QMessageBox* box : parent.findChildren<QMessageBox*>())
        if (box->isVisible() && (objectName.isEmpty() || box->objectName() == objectName)) return box;
    return nullptr;
}

}  // namespace folio::test
