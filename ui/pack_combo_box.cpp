#include "ui/pack_combo_box.h"

#include <exception>
#include <string>

#include "app/packs.h"

namespace folio::ui {

PackComboBox::PackComboBox(bool offerNoPack, QWidget* parent) : QComboBox(parent), offerNoPack_(offerNoPack) {
    refresh();
}

void PackComboBox::setPack(const QString& name) {
    if (const int index = findData(name); index >= 0) setCurrentIndex(index);
}

QString PackComboBox::refresh() {
    const QString current = pack();
    clear();
    if (offerNoPack_) addItem(tr("No pack"), QString());
    QString error;
    try {
        for (const std::string& name : app::pack_names())
            addItem(QString::fromStdString(name), QString::fromStdString(name));
    } catch (const std::exception& e) {
        error = tr("Cannot list the packs: %1").arg(QString::fromStdString(e.what()));
    }
    setPack(current);
    return error;
}

}  // namespace folio::ui
