#pragma once
// The domain-pack picker the Ask, Summary and Batch panels share: the packs
// app::pack_names() lists (built-in and installed), after a "No pack" entry
// where a job can run without one.
//
// Thread rules: UI thread only.

#include <QComboBox>
#include <QString>

namespace folio::ui {

class PackComboBox final : public QComboBox {
    Q_OBJECT

public:
    explicit PackComboBox(bool offerNoPack, QWidget* parent = nullptr);

    // The chosen pack's name; empty for "No pack" (or when there is none).
    QString pack() const { return currentData().toString(); }
    // Chooses `name`; an unknown name leaves the choice as it is.
    void setPack(const QString& name);
    // Lists the packs again, keeping the choice when it is still there.
    // Returns why they could not be listed, or an empty string.
    QString refresh();

private:
    const bool offerNoPack_;
};

}  // namespace folio::ui
