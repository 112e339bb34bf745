#include "ui/error_box.h"

#include <QMessageBox>

namespace folio::ui {

void ErrorBox::show(QWidget* parent, const QString& title, const QString& text, const QString& details) {
    if (box_) box_->close();
    auto* box = new QMessageBox(QMessageBox::Warning, title, text, QMessageBox::Ok, parent);
    box->setObjectName(objectName_);
    box->setDetailedText(details);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box_ = box;
    box->open();
}

}  // namespace folio::ui
