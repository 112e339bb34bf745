#include <signal.h>
#include <sys/wait.h>

#include <QElapsedTimer>
#include <QtTest>
#include <algorithm>
#include <map>
#include <set>
#include "ingest/error.h"
#include "ingest/worker_pool.h"

using namespace folio::ingest;
using namespace std::chrono_literals;

namespace {

WorkerTask command(const std::string& text, int page = 1) {
    WorkerTask task;
    task.path = text;
    task.first_page = task.last_page = page;
    return task;
}

// Waits for `count` results (by task id), failing the test after `limit`.
std::map<std::uint64_t, WorkerResult> collect(WorkerPool& pool, std::size_t count,
                                              std::chrono::milliseconds limit = 20s) {
    std::map<std::uint64_t, WorkerResult> results;
    QElapsedTimer timer;
    timer.start();
    while (results.size() < count && timer.elapsed() < limit.count()) {
        for (WorkerResult& result : pool.wait(100ms)) {
            const auto id = result.task_id;
            if (!results.emplace(id, std::move(result)).second)
                qFatal("task %llu came back twice", static_cast<unsigned long long>(id));
        }
    }
    return results;
}

bool reaped(pid_t pid) {
    // A zombie still answers kill(pid, 0); a reaped process does not exist.
    return kill(pid, 0) == -1 && errno == ESRCH;
}

}  // namespace

class WorkerPoolTest : public QObject {
    Q_OBJECT

    WorkerPoolOptions options(int workers) { return {FOLIO_FAKE_WORKER, workers}; }

private slots:
    void taskRoundTrips() {
        WorkerPool pool(options(1));
        const auto id = pool.submit(command("pid", 7), 10s);
        auto results = collect(pool, 1);
        QCOMPARE(results.size(), size_t(1));
        const WorkerResult& result = results.at(id);
        QVERIFY2(result.error.empty(), result.error.c_str());
        QCOMPARE(result.pages.size(), size_t(1));
        QCOMPARE(result.pages[0].number, 7);
        QCOMPARE(result.pages[0].text, std::to_string(pool.worker_pids().at(0)));
        QCOMPARE(pool.unfinished(), size_t(0));
    }

    void workerErrorIsAResultNotALostWorker() {
        WorkerPool pool(options(1));
        const auto id = pool.submit(command("fail:encrypted PDF: needs a password"), 10s);
        auto results = collect(pool, 1);
        QCOMPARE(results.at(id).error, std::string("encrypted PDF: needs a password"));
        QVERIFY(!results.at(id).worker_lost);
        QCOMPARE(pool.worker_pids().size(), size_t(1));  // still the same, alive
    }

    void twoWorkersRunInParallel() {
        WorkerPool pool(options(2));
        QCOMPARE(pool.free_workers(), 2);
        QElapsedTimer timer;
        timer.start();
        const auto first = pool.submit(command("sleep:400"), 10s);
        const auto second = pool.submit(command("sleep:400"), 10s);
        const auto third = pool.submit(command("sleep:400"), 10s);
        QCOMPARE(pool.free_workers(), 0);
        auto results = collect(pool, 3);
        const auto elapsed = timer.elapsed();
        QCOMPARE(results.size(), size_t(3));
        for (const auto& [id, result] : results) QVERIFY2(result.error.empty(), result.error.c_str());
        // Two run side by side, the third after them: ~800 ms, not ~1200.
        QVERIFY2(elapsed >= 790 && elapsed < 1300, qPrintable(QString::number(elapsed)));
        QVERIFY(results.at(first).pages[0].text != results.at(second).pages[0].text);
        const std::set<std::string> pids{results.at(first).pages[0].text, results.at(second).pages[0].text,
                                         results.at(third).pages[0].text};
        QCOMPARE(pids.size(), size_t(2));
        QCOMPARE(pool.free_workers(), 2);
    }

    void crashFailsOnlyItsTask() {
        WorkerPool pool(options(2));
        std::vector<std::uint64_t> good;
        good.push_back(pool.submit(command("sleep:50"), 10s));
        const auto crashing = pool.submit(command("abort"), 10s);
        for (int i = 0; i < 5; ++i) good.push_back(pool.submit(command("pid"), 10s));
        auto results = collect(pool, 7);
        QCOMPARE(results.size(), size_t(7));
        const WorkerResult& crashed = results.at(crashing);
        QVERIFY(crashed.worker_lost);
        QCOMPARE(crashed.error, std::string("worker crashed (signal 6, SIGABRT) while opening abort"));
        for (auto id : good) QVERIFY2(results.at(id).error.empty(), results.at(id).error.c_str());

        // The pool goes on with a replacement, and the dead worker was reaped.
        std::set<pid_t> pids_seen;
        for (auto id : good) pids_seen.insert(std::stoi(results.at(id).pages[0].text));
        const std::vector<pid_t> live = pool.worker_pids();
        QCOMPARE(live.size(), size_t(2));
        for (pid_t pid : pids_seen)
            if (std::find(live.begin(), live.end(), pid) == live.end()) QVERIFY(reaped(pid));
        const auto after = pool.submit(command("pid"), 10s);
        auto more = collect(pool, 1);
        QVERIFY2(more.at(after).error.empty(), more.at(after).error.c_str());
    }

    void hangingTaskIsKilledAtItsTimeout() {
        WorkerPool pool(options(1));
        const auto first = pool.submit(command("pid"), 10s);
        const pid_t hung_pid = std::stoi(collect(pool, 1).at(first).pages[0].text);
        QElapsedTimer timer;
        timer.start();
        const auto hanging = pool.submit(command("hang"), 300ms);
        auto results = collect(pool, 1, 5s);
        const auto elapsed = timer.elapsed();
        QCOMPARE(results.size(), size_t(1));
        const WorkerResult& result = results.at(hanging);
        QVERIFY(result.worker_lost);
        QCOMPARE(result.error, std::string("timed out after 300 ms while opening hang"));
        QVERIFY2(elapsed >= 300 && elapsed < 1500, qPrintable(QString::number(elapsed)));
        QVERIFY(reaped(hung_pid));

        const auto next = pool.submit(command("pid"), 10s);
        auto after = collect(pool, 1);
        QVERIFY2(after.at(next).error.empty(), after.at(next).error.c_str());
        QVERIFY(std::stoi(after.at(next).pages[0].text) != hung_pid);
    }

    void largeResultsDoNotDeadlock() {
        // ~7 MB per result, far beyond a socket buffer, from two workers at
        // once while more tasks wait to be sent.
        WorkerPool pool(options(2));
        constexpr int words = 200'000;
        std::vector<std::uint64_t> ids;
        for (int i = 0; i < 6; ++i) ids.push_back(pool.submit(command("words:" + std::to_string(words)), 30s));
        auto results = collect(pool, ids.size(), 30s);
        QCOMPARE(results.size(), ids.size());
        for (auto id : ids) {
            const WorkerResult& result = results.at(id);
            QVERIFY2(result.error.empty(), result.error.c_str());
            const Page& page = result.pages.at(0);
            QCOMPARE(int(page.words.size()), words);
            QCOMPARE(page.words.back().text, "w" + std::to_string(words - 1));
            QCOMPARE(page.words.back().box.x1, float(words - 1) + 2);
            QVERIFY(page.words[9].line_end && !page.words[8].line_end);
        }
    }

    void workersGetOneOmpThreadAndNoTerminal() {
        const QByteArray saved = qgetenv("OMP_THREAD_LIMIT");
        qputenv("OMP_THREAD_LIMIT", "4");
        WorkerPool pool(options(1));
        if (saved.isNull()) qunsetenv("OMP_THREAD_LIMIT");
        else qputenv("OMP_THREAD_LIMIT", saved);
        const auto omp = pool.submit(command("env:OMP_THREAD_LIMIT"), 10s);
        const auto path = pool.submit(command("env:PATH"), 10s);
        const auto error_output = pool.submit(command("stderr"), 10s);
        auto results = collect(pool, 3);
        QCOMPARE(results.at(omp).pages.at(0).text, std::string("1"));
        QCOMPARE(results.at(path).pages.at(0).text, qgetenv("PATH").toStdString());
        QCOMPARE(results.at(error_output).pages.at(0).text, std::string("/dev/null"));
    }

    void noZombiesAfterDestruction() {
        std::vector<pid_t> pids;
        QElapsedTimer timer;
        {
            WorkerPool pool(options(3));
            const auto idle = pool.submit(command("pid"), 10s);
            pool.submit(command("hang"), 60s);
            pool.submit(command("abort"), 60s);
            auto results = collect(pool, 2);  // the pid and the crash
            QVERIFY(results.at(idle).error.empty());
            pool.submit(command("sleep:60000"), 60s);  // on the idle worker
            const auto respawned = pool.submit(command("pid"), 10s);  // on a replacement for the crashed one
            QVERIFY(collect(pool, 1).at(respawned).error.empty());
            pids = pool.worker_pids();
            QCOMPARE(pids.size(), size_t(3));  // idle, hanging, sleeping
            timer.start();
        }
        QVERIFY2(timer.elapsed() < 1000, qPrintable(QString::number(timer.elapsed())));
        for (pid_t pid : pids) QVERIFY(reaped(pid));
        int status;
        QCOMPARE(waitpid(-1, &status, WNOHANG), -1);
        QCOMPARE(errno, ECHILD);
    }

    void missingExecutableThrows() {
        WorkerPool pool({"/nonexistent/folio-ingest-worker", 1});
        QVERIFY_THROWS_EXCEPTION(IngestError, pool.submit(command("pid"), 1s));
    }

    void programThatIsNotAWorkerThrows() {
        {
            WorkerPool pool({"/bin/true", 1});
            pool.submit(command("pid"), 5s);
            try {
                collect(pool, 1, 5s);
                QFAIL("no exception");
            } catch (const IngestError& e) {
                QVERIFY2(std::string(e.what()).find("stopped before it started: worker exited (status 0)") !=
                             std::string::npos,
                         e.what());
            }
        }
        {
            // cat echoes the task frame back instead of a hello.
            WorkerPool pool({"/bin/cat", 1});
            pool.submit(command("pid"), 5s);
            try {
                collect(pool, 1, 5s);
                QFAIL("no exception");
            } catch (const IngestError& e) {
                QVERIFY2(std::string(e.what()).find("is not an ingest worker") != std::string::npos, e.what());
            }
        }
        int status;
        QCOMPARE(waitpid(-1, &status, WNOHANG), -1);
    }
};

QTEST_GUILESS_MAIN(WorkerPoolTest)
#include "tst_worker_pool.moc"
