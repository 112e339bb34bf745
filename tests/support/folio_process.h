#pragma once
// The app suites that test the command line run the real `folio` executable
// (FOLIO_EXECUTABLE, defined for them by tests/app/CMakeLists.txt) as a user
// would, and read its exit status and output.

#include <QProcess>
#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

namespace folio::test {

struct FolioRun {
    int exit_code = -1;  // -1: it crashed or ran past the timeout (and was killed)
    QString out;
    QString err;
};

inline FolioRun run_folio(const QStringList& arguments, int timeout_ms = 300000,
                          const QProcessEnvironment& environment = QProcessEnvironment::systemEnvironment()) {
    QProcess process;
    process.setProcessEnvironment(environment);
    process.start(FOLIO_EXECUTABLE, arguments);
    FolioRun run;
    if (!process.waitForFinished(timeout_ms)) {
        process.kill();
        process.waitForFinished();
        return run;
    }
    run.exit_code = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    run.out = QString::fromUtf8(process.readAllStandardOutput());
    run.err = QString::fromUtf8(process.readAllStandardError());
    return run;
}

}  // namespace folio::test
