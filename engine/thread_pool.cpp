#include "engine/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace folio::engine {

namespace {

// How long a thread polls before it sleeps on a condition variable. A decode
// step runs a few hundred short loops back to back, each sooner after the
// last than a sleeping thread takes to wake: polling made decode ~1.5x faster
// on two cores.
constexpr std::chrono::microseconds kPollBeforeSleeping{200};
// Polls that only pause the core before polling yields it to other
// processes: the next loop usually comes within a microsecond or two.
constexpr int kPausesBeforeYielding = 2000;

void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

// Polls while waiting() holds: pauses first, then yields, for at most
// kPollBeforeSleeping. Returns whether waiting() still holds.
template <typename Waiting>
bool poll_while(Waiting waiting) {
    for (int i = 0; i < kPausesBeforeYielding; ++i) {
        if (!waiting())
            return false;
        cpu_pause();
    }
    const auto deadline = std::chrono::steady_clock::now() + kPollBeforeSleeping;
    while (waiting()) {
        if (std::chrono::steady_clock::now() >= deadline)
            return true;
        std::this_thread::yield();
    }
    return false;
}

constexpr std::uint64_t kChunkMask = 0xFFFF;
constexpr std::int64_t kMaxChunks = 0xFFFF;

std::uint32_t generation_of(std::uint64_t work) {
    return static_cast<std::uint32_t>(work >> 32);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0)
        n_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    workers_.reserve(static_cast<std::size_t>(n_threads - 1));
    for (int i = 1; i < n_threads; ++i)
        workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    stopping_.store(true);
    {
        std::lock_guard lock(mutex_);
    }
    work_ready_.notify_all();
    for (std::thread& worker : workers_)
        worker.join();
}

void ThreadPool::wake_sleepers() {
    // seq_cst on both sides: a worker either counted itself as sleeping
    // before this load, and is woken, or checks work_ after this store.
    if (sleeping_workers_.load() == 0)
        return;
    {
        std::lock_guard lock(mutex_);
    }
    work_ready_.notify_all();
}

void ThreadPool::parallel_for(std::int64_t n, std::int64_t min_chunk,
                              const std::function<void(std::int64_t, std::int64_t)>& body) {
    if (n <= 0)
        return;
    const std::int64_t max_chunks = std::min(static_cast<std::int64_t>(size()) * 4, kMaxChunks);
    const std::int64_t chunk_size = std::max({std::int64_t{1}, min_chunk, (n + max_chunks - 1) / max_chunks});
    const std::int64_t n_chunks = (n + chunk_size - 1) / chunk_size;
    if (workers_.empty() || n_chunks == 1) {
        body(0, n);
        return;
    }
    body_ = &body;
    n_items_ = n;
    chunk_size_ = chunk_size;
    chunks_finished_.store(0, std::memory_order_relaxed);
    const std::uint32_t generation = generation_of(work_.load(std::memory_order_relaxed)) + 1;
    work_.store(std::uint64_t{generation} << 32 | static_cast<std::uint64_t>(n_chunks) << 16);
    wake_sleepers();

    run_chunks(generation);
    // seq_cst: against the last chunk's increment, when this thread sleeps (see wake_sleepers).
    const auto unfinished = [&] { return chunks_finished_.load() != n_chunks; };
    if (poll_while(unfinished)) {
        std::unique_lock lock(mutex_);
        caller_sleeping_.store(true);
        work_done_.wait(lock, [&] { return !unfinished(); });
        caller_sleeping_.store(false);
    }
    body_ = nullptr;
    std::exception_ptr error;
    {
        std::lock_guard lock(mutex_);
        error = std::exchange(first_error_, nullptr);
    }
    if (error)
        std::rethrow_exception(error);
}

void ThreadPool::worker_loop() {
    std::uint32_t seen_generation = 0;
    for (;;) {
        const auto idle = [&] {
            return !stopping_.load(std::memory_order_relaxed) &&
                   generation_of(work_.load(std::memory_order_acquire)) == seen_generation;
        };
        if (poll_while(idle)) {
            std::unique_lock lock(mutex_);
            sleeping_workers_.fetch_add(1);
            work_ready_.wait(lock, [&] {
                return stopping_.load() || generation_of(work_.load()) != seen_generation;
            });
            sleeping_workers_.fetch_sub(1);
        }
        if (stopping_.load())
            return;
        seen_generation = generation_of(work_.load(std::memory_order_acquire));
        run_chunks(seen_generation);
    }
}

void ThreadPool::run_chunks(std::uint32_t generation) {
    std::uint64_t work = work_.load(std::memory_order_acquire);
    for (;;) {
        const std::uint64_t next = work & kChunkMask;
        const std::uint64_t n_chunks = (work >> 16) & kChunkMask;
        if (generation_of(work) != generation || next >= n_chunks)
            return;
        if (!work_.compare_exchange_weak(work, work + 1, std::memory_order_acq_rel, std::memory_order_acquire))
            continue;  // work now holds the current value
        const std::int64_t begin = static_cast<std::int64_t>(next) * chunk_size_;
        const std::int64_t end = std::min(n_items_, begin + chunk_size_);
        try {
            (*body_)(begin, end);
        } catch (...) {
            std::lock_guard lock(mutex_);
            if (!first_error_)
                first_error_ = std::current_exception();
        }
        if (chunks_finished_.fetch_add(1) + 1 == static_cast<std::int64_t>(n_chunks) && caller_sleeping_.load()) {
            std::lock_guard lock(mutex_);
            work_done_.notify_one();
        }
        work = work_.load(std::memory_order_acquire);
    }
}

}  // namespace folio::engine
