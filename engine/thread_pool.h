#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

// The CPU executor's workers: a fixed set of threads that split one loop at a
// time. The calling thread works too, so a pool of n threads starts n - 1.
//
// Thread rules: parallel_for is called from one thread at a time (the one that
// owns the pool); it returns when every chunk has run. Nested calls from
// inside a chunk are not allowed.

namespace folio::engine {

class ThreadPool {
public:
    // n_threads <= 0 means one per hardware thread.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Runs body(begin, end) over [0, n) cut into contiguous chunks of at least
    // min_chunk items (the last may be shorter), a few chunks per thread so
    // that a thread slowed by another process does not hold up the rest. The
    // first exception a chunk throws is rethrown here after all chunks end.
    // A decode step makes a few hundred of these calls: handing out a loop
    // costs a few atomic operations, no lock, while the workers poll.
    void parallel_for(std::int64_t n, std::int64_t min_chunk,
                      const std::function<void(std::int64_t begin, std::int64_t end)>& body);

private:
    void worker_loop();
    // Claims and runs chunks of loop `generation` until none is left.
    void run_chunks(std::uint32_t generation);
    // Wakes the workers sleeping on work_ready_ (after work_ changed).
    void wake_sleepers();

    std::vector<std::thread> workers_;

    // The current loop: (generation << 32) | (n_chunks << 16) | next chunk.
    // Threads claim a chunk with one compare-and-swap, which fails for a
    // thread still looking at an earlier loop. The loop's other fields are
    // written before its generation is published and stay unchanged until
    // every chunk has finished, so a thread that claimed a chunk reads them
    // safely.
    std::atomic<std::uint64_t> work_ = 0;
    const std::function<void(std::int64_t, std::int64_t)>* body_ = nullptr;
    std::int64_t n_items_ = 0;
    std::int64_t chunk_size_ = 1;
    std::atomic<std::int64_t> chunks_finished_ = 0;

    // Sleeping, for threads that polled too long: workers wait for a new
    // generation, the caller for the last chunk.
    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::condition_variable work_done_;
    std::atomic<int> sleeping_workers_ = 0;
    std::atomic<bool> caller_sleeping_ = false;
    std::atomic<bool> stopping_ = false;
    std::exception_ptr first_error_;  // under mutex_
};

}  // namespace folio::engine
