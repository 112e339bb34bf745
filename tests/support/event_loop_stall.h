#pragma once
// How long the UI thread's event loop could not turn, for the suites that
// check the window stays responsive. Create and read it on the UI thread.

#include <QElapsedTimer>
#include <QObject>
#include <QTimer>

#include <algorithm>
#include <fstream>

namespace folio::test {

// Nanoseconds the calling thread has spent runnable but waiting for a CPU
// (the second field of Linux's /proc/thread-self/schedstat); 0 where the
// kernel does not say.
inline qint64 runQueueWaitNs() {
    std::ifstream schedstat("/proc/thread-self/schedstat");
    long long onCpu = 0, waiting = 0;
    return schedstat >> onCpu >> waiting ? waiting : 0;
}

// Ticks a 10 ms timer on the UI thread and keeps the longest gap between
// ticks: how long the event loop could not run (plus the interval itself).
// A gap has two causes: the UI thread was busy or blocked (the window's
// fault), or it was ready but other processes held the CPUs (a loaded
// machine's). The stall is the gap less that second part, so that the test
// judges the window, not the machine it runs on.
class EventLoopStallMeter final : public QObject {
public:
    EventLoopStallMeter() {
        timer_.setTimerType(Qt::PreciseTimer);
        timer_.setInterval(10);
        connect(&timer_, &QTimer::timeout, this, [this] {
            const qint64 now = clock_.nsecsElapsed(), waited = runQueueWaitNs();
            const qint64 gap = now - lastTickNs_;
            longestGapNs_ = std::max(longestGapNs_, gap);
            longestStallNs_ = std::max(longestStallNs_, gap - (waited - lastWaitNs_));
            lastTickNs_ = now;
            lastWaitNs_ = waited;
        });
    }
    void start() {
        longestGapNs_ = longestStallNs_ = lastTickNs_ = 0;
        lastWaitNs_ = runQueueWaitNs();
        clock_.start();
        timer_.start();
    }
    void stop() { timer_.stop(); }
    qint64 longestGapMs() const { return longestGapNs_ / 1'000'000; }
    qint64 longestStallMs() const { return longestStallNs_ / 1'000'000; }

private:
    QTimer timer_;
    QElapsedTimer clock_;
    qint64 lastTickNs_ = 0, lastWaitNs_ = 0, longestGapNs_ = 0, longestStallNs_ = 0;
};

}  // namespace folio::test
