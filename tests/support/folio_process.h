#pragma once
// The app suites that test the command line run the real `folio` executable
// (FOLIO_EXECUTABLE, defined for them by tests/app/CMakeLists.txt) as a user
// would, and read its exit status and output.

#include <QJsonDocument>
#include <QJsonObject>
#include <QList>
#include <QProcess>
#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

namespace folio::test {

struct FolioRun {
    int exit_code = -1;  // -1: it crashed or ran past the timeout (and was killed)
    QString out;
    QString err;
    QList<QJsonObject> lines;  // the lines of out that are JSON objects (--json output)
};

// The run of a started process: waits, then reads its status and output.
inline FolioRun finish_folio(QProcess& process, int timeout_ms) {
    FolioRun run;
    if (!process.waitForFinished(timeout_ms)) {
        process.kill();
        process.waitForFinished();
        return run;
    }
    run.exit_code = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    run.out = QString::fromUtf8(process.readAllStandardOutput());
    run.err = QString::fromUtf8(process.readAllStandardError());
    for (const QString& line : run.out.split('\n', Qt::SkipEmptyParts)) {
        const QJsonDocument json = QJsonDocument::fromJson(line.toUtf8());
        if (json.isObject()) run.lines.append(json.object());
    }
    return run;
}

inline FolioRun run_folio(const QStringList& arguments, int timeout_ms = 300000,
                          const QProcessEnvironment& environment = QProcessEnvironment::systemEnvironment()) {
    QProcess process;
    process.setProcessEnvironment(environment);
    process.start(FOLIO_EXECUTABLE, arguments);
    return finish_folio(process, timeout_ms);
}

// The same with `input` on its standard input (then closed).
inline FolioRun run_folio_with_input(const QStringList& arguments, const QByteArray& input, int timeout_ms = 300000) {
    QProcess process;
    process.start(FOLIO_EXECUTABLE, arguments);
    process.write(input);
    process.closeWriteChannel();
    return finish_folio(process, timeout_ms);
}

}  // namespace folio::test
