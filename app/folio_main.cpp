#include <QCoreApplication>

#include "app/cli.h"

int main(int argc, char** argv) {
    QCoreApplication application(argc, argv);
    QCoreApplication::setApplicationName("folio");
    QCoreApplication::setApplicationVersion(FOLIO_VERSION);
    return folio::app::run_cli(argc, argv);
}
