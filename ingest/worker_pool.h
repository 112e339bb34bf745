#pragma once
// A pool of worker processes (POSIX) that run WorkerTasks: each worker is
// spawned on demand from `executable` with OMP_THREAD_LIMIT=1 added to its
// environment (Tesseract reads it only at process start), stderr on /dev/null
// (Poppler and Tesseract print warnings), in its own process group (a
// terminal's Ctrl-C reaches the parent, which decides), and one end of a
// socket pair as its stdin and stdout (a socket rather than two pipes: send()
// with MSG_NOSIGNAL reports a dead worker as EPIPE without a SIGPIPE, and
// without the pool touching the application's signal handling). All I/O is
// non-blocking under poll(), reading while writing, so a large result never
// deadlocks a worker. A worker runs one task at a time; a task that outlives its
// timeout gets its worker SIGKILLed, one that crashes its worker fails alone,
// and a fresh worker takes the place of either.
//
// Threads: call it from one thread only, the one that destroys it: workers
// are spawned from that thread and die with it (PR_SET_PDEATHSIG in the worker).
// Processes: every worker spawned is reaped (after a crash, a timeout, or in
// the destructor); the pool leaves no zombies and no orphans.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>
#include "ingest/worker_protocol.h"

namespace folio::ingest {

struct WorkerPoolOptions {
    std::string executable;   // speaks worker_protocol.h on stdin/stdout
    int max_workers = 1;
};

class WorkerPool {
public:
    explicit WorkerPool(WorkerPoolOptions options);
    // Kills busy workers, closes idle workers' stdin (they exit), reaps all.
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Queues a task and returns the id its result will carry. It goes to the
    // first free worker; `timeout` counts from when the worker receives it.
    // Throws IngestError when a worker cannot be spawned.
    std::uint64_t submit(WorkerTask task, std::chrono::milliseconds timeout);

    // Waits up to `max_wait` for tasks to finish
    // and returns the results of those that did. Every submitted task comes
    // back exactly once: ok, failed by the worker (.error), or failed by the
    // pool (.error and .worker_lost: "worker crashed (signal 11, SIGSEGV)
    // while ...", "timed out after 30 s while ..."). Throws IngestError when a
    // worker cannot be started: the executable cannot be spawned, or exits or
    // says something else before its hello.
    std::vector<WorkerResult> wait(std::chrono::milliseconds max_wait);

    // Workers that would take a task at once: max_workers minus busy workers
    // and queued tasks (0 or more).
    int free_workers() const;
    // Tasks submitted whose results wait() has not yet returned.
    std::size_t unfinished() const { return unfinished_; }
    // Live worker processes (for tests and diagnostics).
    std::vector<pid_t> worker_pids() const;

private:
    struct Worker;
    struct QueuedTask {
        WorkerTask task;
        std::chrono::milliseconds timeout;
    };

    void dispatch_queued();
    void start_task(Worker& worker, QueuedTask queued);
    void spawn(Worker& worker);
    void flush_output(Worker& worker);
    void read_input(Worker& worker, std::vector<WorkerResult>& finished);
    void expire_overdue(std::vector<WorkerResult>& finished);
    // Kills and reaps the worker and empties its slot; its running task, if
    // any, fails with `reason` or, when that is empty, with how the process
    // ended ("worker crashed (signal 6, SIGABRT) while ..."), which it returns.
    std::string retire(Worker& worker, const std::string& reason, std::vector<WorkerResult>& finished);

    WorkerPoolOptions options_;
    std::vector<std::string> environment_;  // NAME=VALUE for every spawn
    std::vector<Worker> workers_;           // max_workers slots; a slot may hold no process
    std::deque<QueuedTask> queue_;
    std::uint64_t next_task_id_ = 1;
    std::size_t unfinished_ = 0;
    std::vector<char> read_buffer_;
};

}  // namespace folio::ingest
