#include <QtTest>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/thread_pool.h"

using namespace folio::engine;

// The pool hands out chunks without a lock; these tests check that every
// item runs exactly once, whichever thread claims it, through back-to-back
// loops (workers polling) and loops after a pause (workers asleep).
class TestThreadPool : public QObject {
    Q_OBJECT

private slots:
    void everyItemRunsOnce();
    void loopsBackToBack();
    void loopsAfterWorkersSleep();
    void waitsForSlowChunks();
    void chunksRespectMinimum();
    void exceptionReachesCaller();
    void destroysWhileWorkersSleep();
};

namespace {

// Runs one loop of n items and checks each was visited exactly once.
void run_and_check(ThreadPool& pool, std::int64_t n, std::int64_t min_chunk) {
    std::vector<std::atomic<int>> visits(static_cast<std::size_t>(n));
    pool.parallel_for(n, min_chunk, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i)
            visits[static_cast<std::size_t>(i)].fetch_add(1);
    });
    for (std::int64_t i = 0; i < n; ++i)
        QVERIFY2(visits[static_cast<std::size_t>(i)].load() == 1,
                 qPrintable(QString("n %1, item %2 ran %3 times").arg(n).arg(i).arg(visits[static_cast<std::size_t>(i)].load())));
}

}  // namespace

void TestThreadPool::everyItemRunsOnce() {
    for (const int threads : {1, 2, 3, 8}) {
        ThreadPool pool(threads);
        QCOMPARE(pool.size(), threads);
        for (const std::int64_t n : {1, 2, 7, 16, 100, 1000, 100000})
            for (const std::int64_t min_chunk : {1, 3, 16, 4096})
                run_and_check(pool, n, min_chunk);
    }
}

// Each loop starts while the workers may still be finishing or leaving the
// last one: a thread that lags a generation must not claim the next loop's
// chunks as its own.
void TestThreadPool::loopsBackToBack() {
    ThreadPool pool(4);
    std::atomic<std::int64_t> total = 0;
    std::int64_t expected = 0;
    for (int loop = 0; loop < 20000; ++loop) {
        const std::int64_t n = 1 + loop % 37;
        expected += n * (loop + 1);
        pool.parallel_for(n, 1, [&, loop](std::int64_t begin, std::int64_t end) {
            total.fetch_add((end - begin) * (loop + 1));
        });
        QCOMPARE(total.load(), expected);  // the loop had finished when parallel_for returned
    }
}

void TestThreadPool::loopsAfterWorkersSleep() {
    ThreadPool pool(3);
    for (int loop = 0; loop < 5; ++loop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // longer than the workers poll
        run_and_check(pool, 1000, 1);
    }
}

// Chunks that outlast the caller's polling: it sleeps until the last one
// ends, and returns only then.
void TestThreadPool::waitsForSlowChunks() {
    ThreadPool pool(2);
    for (int loop = 0; loop < 3; ++loop) {
        std::atomic<int> finished = 0;
        pool.parallel_for(8, 1, [&](std::int64_t, std::int64_t) {
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            finished.fetch_add(1);
        });
        QCOMPARE(finished.load(), 8);
    }
}

void TestThreadPool::chunksRespectMinimum() {
    ThreadPool pool(4);
    std::atomic<int> short_chunks = 0;
    std::atomic<int> chunks = 0;
    pool.parallel_for(1000, 64, [&](std::int64_t begin, std::int64_t end) {
        chunks.fetch_add(1);
        if (end - begin < 64 && end != 1000)
            short_chunks.fetch_add(1);
    });
    QCOMPARE(short_chunks.load(), 0);
    QVERIFY(chunks.load() > 1);
}

void TestThreadPool::exceptionReachesCaller() {
    ThreadPool pool(3);
    std::atomic<int> ran = 0;
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, pool.parallel_for(100, 1, [&](std::int64_t begin, std::int64_t) {
        ran.fetch_add(1);
        if (begin == 0)
            throw std::runtime_error("chunk 0 failed");
    }));
    QVERIFY(ran.load() > 1);  // the other chunks still ran
    run_and_check(pool, 500, 1);  // and the pool still works
}

void TestThreadPool::destroysWhileWorkersSleep() {
    for (int i = 0; i < 3; ++i) {
        ThreadPool pool(4);
        run_and_check(pool, 100, 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

QTEST_GUILESS_MAIN(TestThreadPool)
#include "tst_thread_pool.moc"
