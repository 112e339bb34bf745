// folio-gui: Folio's window over a library folder.

#include <QApplication>
#include <QCommandLineOption>
#include <QCommandLineParser>
#include <QDir>
#include <QFile>
#include <QMessageBox>
#include <QSettings>

#include <exception>
#include <memory>
#include <string>

#include "app/library.h"
#include "ui/main_window.h"

int main(int argc, char** argv) {
    QApplication application(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("Folio"));
    QApplication::setApplicationName(QStringLiteral("Folio"));
    QApplication::setApplicationVersion(QStringLiteral(FOLIO_VERSION));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Folio: a local library of PDFs, scans and text files."));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption libraryOption(
        QStringLiteral("library"),
        QStringLiteral("The library folder (default: the one in Settings, else $FOLIO_LIBRARY, else ~/.local/share/folio/library)."),
        QStringLiteral("DIR"));
    parser.addOption(libraryOption);
    parser.addPositionalArgument(QStringLiteral("paths"), QStringLiteral("Files or folders to ingest at start."),
                                 QStringLiteral("[PATH...]"));
    parser.process(application);

    QSettings stored;
    const folio::ui::FolioSettings settings = folio::ui::FolioSettings::load(stored);
    // The library reads its embedding model from the environment, as the
    // CLI's `folio index` does; a choice in Settings takes that place.
    if (!settings.embeddingModel.isEmpty())
        qputenv("FOLIO_EMBEDDING_MODEL", QFile::encodeName(settings.embeddingModel));
    const std::string directory = parser.isSet(libraryOption) ? parser.value(libraryOption).toStdString()
                                                              : settings.effectiveLibraryDirectory().toStdString();
    std::unique_ptr<folio::app::Library> library;
    try {
        library = std::make_unique<folio::app::Library>(directory);
    } catch (const std::exception& e) {
        QMessageBox::critical(nullptr, QStringLiteral("Folio"),
                              QApplication::translate("main", "Cannot open the library in %1:\n%2")
                                  .arg(QDir::toNativeSeparators(QString::fromStdString(directory)),
                                       QString::fromStdString(e.what())));
        return 1;
    }

    folio::ingest::PipelineOptions pipeline;
    pipeline.ocr.languages = settings.ocrLanguages.toStdString();
    folio::ui::MainWindow window(*library, pipeline, settings);
    window.show();
    window.addPaths(parser.positionalArguments());
    return application.exec();
}
