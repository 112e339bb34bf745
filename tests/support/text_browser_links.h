#pragma once
// Clicks on the links of a QTextBrowser (chat citations, summary pages) the
// way a user does: a mouse press and release over the link's text.

#include <QTest>
#include <QTextBlock>
#include <QTextBrowser>

namespace folio::test {

// Where the first link whose href starts with `prefix` is drawn in the
// browser's viewport; an empty rect when there is none.
inline QRect linkRect(QTextBrowser* browser, const QString& prefix, QString* href = nullptr) {
    for (QTextBlock block = browser->document()->begin(); block.isValid(); block = block.next()) {
        for (auto it = block.begin(); !it.atEnd(); ++it) {
            const QTextFragment fragment = it.fragment();
            if (!fragment.charFormat().anchorHref().startsWith(prefix)) continue;
            if (href) *href = fragment.charFormat().anchorHref();
            QTextCursor cursor(browser->document());
            cursor.setPosition(fragment.position() + 1);
            browser->setTextCursor(cursor);
            browser->ensureCursorVisible();
            return browser->cursorRect(cursor);
        }
    }
    return {};
}

// A real click on the link: press and release over it.
inline bool clickLink(QTextBrowser* browser, const QString& prefix, QString* href = nullptr) {
    const QRect rect = linkRect(browser, prefix, href);
    if (rect.isNull()) return false;
    const QPoint point(rect.left() - 2, rect.center().y());
    QTest::mouseClick(browser->viewport(), Qt::LeftButton, {}, point);
    return true;
}


}  // namespace folio::test
