#include "ingest/worker_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include "ingest/error.h"

extern char** environ;

namespace folio::ingest {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes taken from a worker's socket per recv(): a 1000-word page is ~40 KB.
constexpr std::size_t read_chunk_size = 256 * 1024;
// How long the destructor lets idle workers exit on their own after their
// stdin closes, before it kills them.
constexpr auto idle_exit_grace = std::chrono::seconds(1);

std::string system_error(const char* what, int error) { return std::string(what) + ": " + std::strerror(error); }

std::string format_duration(std::chrono::milliseconds duration) {
    if (duration.count() % 1000 == 0) return std::to_string(duration.count() / 1000) + " s";
    return std::to_string(duration.count()) + " ms";
}

// "worker crashed (signal 11, SIGSEGV)", from a waitpid() status.
std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        const int signal_number = WTERMSIG(status);
        const char* abbreviation = sigabbrev_np(signal_number);
        return "worker crashed (signal " + std::to_string(signal_number) +
               (abbreviation ? std::string(", SIG") + abbreviation : std::string()) + ")";
    }
    if (WIFEXITED(status)) return "worker exited (status " + std::to_string(WEXITSTATUS(status)) + ")";
    return "worker died";
}

int poll_timeout_ms(Clock::duration remaining) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
    return static_cast<int>(std::clamp<decltype(ms)>(ms, 0, INT_MAX));
}

}  // namespace

struct WorkerPool::Worker {
    pid_t pid = -1;                     // -1: no process in this slot
    int socket = -1;                    // the parent's end of the socket pair
    bool greeted = false;               // its hello has arrived
    std::optional<WorkerTask> task;     // the task it is running
    std::chrono::milliseconds timeout{};
    Clock::time_point deadline;
    std::string output;                 // the task frame
    std::size_t output_sent = 0;        // bytes of `output` already sent
    FrameReader input;
};

WorkerPool::WorkerPool(WorkerPoolOptions options) : options_(std::move(options)) {
    options_.max_workers = std::max(1, options_.max_workers);
    for (char** entry = environ; *entry; ++entry)
        if (std::strncmp(*entry, "OMP_THREAD_LIMIT=", 17) != 0) environment_.emplace_back(*entry);
    environment_.emplace_back("OMP_THREAD_LIMIT=1");
    workers_.resize(options_.max_workers);
}

WorkerPool::~WorkerPool() {
    // Busy workers are killed; idle ones see end-of-file on stdin and exit.
    for (Worker& worker : workers_) {
        if (worker.pid < 0) continue;
        if (worker.task) kill(worker.pid, SIGKILL);
        else shutdown(worker.socket, SHUT_WR);
    }
    const auto give_up = Clock::now() + idle_exit_grace;
    for (Worker& worker : workers_) {
        if (worker.pid < 0 || worker.task) continue;
        char discard[4096];
        for (;;) {
            pollfd hangup{worker.socket, POLLIN, 0};
            if (poll(&hangup, 1, poll_timeout_ms(give_up - Clock::now())) <= 0) break;
            const ssize_t got = recv(worker.socket, discard, sizeof discard, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) break;
        }
    }
    // SIGKILL is a no-op for a worker that has already exited (a zombie
    // until waitpid), and it ends one that ignored its closed stdin.
    for (Worker& worker : workers_) {
        if (worker.pid < 0) continue;
        kill(worker.pid, SIGKILL);
        while (waitpid(worker.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        close(worker.socket);
    }
}

std::uint64_t WorkerPool::submit(WorkerTask task, std::chrono::milliseconds timeout) {
    task.id = next_task_id_++;
    const std::uint64_t id = task.id;
    queue_.push_back({std::move(task), timeout});
    ++unfinished_;
    dispatch_queued();
    return id;
}

int WorkerPool::free_workers() const {
    const auto idle = std::count_if(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.task; });
    return std::max(0, static_cast<int>(idle) - static_cast<int>(queue_.size()));
}

std::vector<pid_t> WorkerPool::worker_pids() const {
    std::vector<pid_t> pids;
    for (const Worker& worker : workers_)
        if (worker.pid > 0) pids.push_back(worker.pid);
    return pids;
}

void WorkerPool::dispatch_queued() {
    // Live idle workers first: a new process costs a spawn and, later, a
    // fresh PDF open and OCR model load.
    for (bool spawning : {false, true}) {
        for (Worker& worker : workers_) {
            if (queue_.empty()) return;
            if (worker.task || (worker.pid > 0) == spawning) continue;
            if (spawning) spawn(worker);
            start_task(worker, std::move(queue_.front()));
            queue_.pop_front();
        }
    }
}

void WorkerPool::spawn(Worker& worker) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        throw IngestError(system_error("cannot create a socket pair for an ingest worker", errno));

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pair[1], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, pair[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);

    // The worker starts with no blocked signals and default dispositions
    // (the parent may ignore SIGPIPE; a worker must die of it), in a process
    // group of its own.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t signals;
    sigemptyset(&signals);
    posix_spawnattr_setsigmask(&attributes, &signals);
    sigfillset(&signals);
    posix_spawnattr_setsigdefault(&attributes, &signals);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

    std::vector<char*> envp;
    for (std::string& entry : environment_) envp.push_back(entry.data());
    envp.push_back(nullptr);
    char* argv[] = {options_.executable.data(), nullptr};

    pid_t pid = -1;
    const int error = posix_spawn(&pid, options_.executable.c_str(), &actions, &attributes, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(pair[1]);
    if (error != 0) {
        close(pair[0]);
        throw IngestError("cannot start the ingest worker " + options_.executable + ": " + std::strerror(error));
    }
    worker = Worker{};
    worker.pid = pid;
    worker.socket = pair[0];
}

void WorkerPool::start_task(Worker& worker, QueuedTask queued) {
    worker.output.clear();
    worker.output_sent = 0;
    append_task_frame(worker.output, queued.task);
    worker.timeout = queued.timeout;
    worker.deadline = Clock::now() + queued.timeout;
    worker.task = std::move(queued.task);
    flush_output(worker);
}

void WorkerPool::flush_output(Worker& worker) {
    while (worker.output_sent < worker.output.size()) {
        const ssize_t sent = send(worker.socket, worker.output.data() + worker.output_sent,
                                  worker.output.size() - worker.output_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent >= 0) {
            worker.output_sent += static_cast<std::size_t>(sent);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;  // the rest goes when poll() says the socket is writable
        } else if (errno != EINTR) {
            // The worker is gone; reading its socket finds end-of-file and
            // fails the task with how the process ended.
            worker.output.clear();
            worker.output_sent = 0;
            return;
        }
    }
}

void WorkerPool::read_input(Worker& worker, std::vector<WorkerResult>& finished) {
    if (read_buffer_.empty()) read_buffer_.resize(read_chunk_size);
    bool closed = false;
    for (;;) {
        const ssize_t got = recv(worker.socket, read_buffer_.data(), read_buffer_.size(), MSG_DONTWAIT);
        if (got > 0) {
            worker.input.append(read_buffer_.data(), static_cast<std::size_t>(got));
            continue;
        }
        if (got < 0 && errno == EINTR) continue;
        closed = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        break;
    }

    try {
        while (const auto payload = worker.input.next_frame()) {
            const MessageKind kind = message_kind(*payload);
            if (!worker.greeted) {
                if (kind != MessageKind::Hello || decode_hello(*payload) != worker_protocol_version)
                    throw WorkerProtocolError("no hello of protocol version " +
                                              std::to_string(worker_protocol_version));
                worker.greeted = true;
                continue;
            }
            if (kind != MessageKind::Result) throw WorkerProtocolError("a message that is not a result");
            WorkerResult result = decode_result(*payload);
            if (!worker.task || result.task_id != worker.task->id)
                throw WorkerProtocolError("a result for a task it was not given");
            worker.task.reset();
            finished.push_back(std::move(result));
        }
    } catch (const WorkerProtocolError& e) {
        if (!worker.greeted) {
            retire(worker, "", finished);
            throw IngestError(options_.executable + " is not an ingest worker of this version of Folio (" +
                              e.what() + ")");
        }
        const std::string task_part = worker.task ? " while " + describe_task(*worker.task) : "";
        retire(worker, std::string("worker sent a malformed message (") + e.what() + ")" + task_part, finished);
        return;
    }

    if (closed) {
        if (!worker.greeted) {
            const std::string how = retire(worker, "", finished);
            throw IngestError("the ingest worker " + options_.executable + " stopped before it started: " + how);
        }
        retire(worker, "", finished);
    }
}

void WorkerPool::expire_overdue(std::vector<WorkerResult>& finished) {
    const auto now = Clock::now();
    for (Worker& worker : workers_) {
        if (!worker.task || now < worker.deadline) continue;
        retire(worker, "timed out after " + format_duration(worker.timeout) + " while " + describe_task(*worker.task),
               finished);
    }
}

std::string WorkerPool::retire(Worker& worker, const std::string& reason, std::vector<WorkerResult>& finished) {
    kill(worker.pid, SIGKILL);
    int status = 0;
    pid_t reaped;
    while ((reaped = waitpid(worker.pid, &status, 0)) < 0 && errno == EINTR) {
    }
    close(worker.socket);
    // waitpid fails when the application set SIGCHLD to SIG_IGN (children
    // are then reaped by the kernel and their status is lost).
    const std::string how = reaped == worker.pid ? describe_exit(status) : "worker died";
    if (worker.task) {
        WorkerResult failed;
        failed.task_id = worker.task->id;
        failed.worker_lost = true;
        failed.error = reason.empty() ? how + " while " + describe_task(*worker.task) : reason;
        finished.push_back(std::move(failed));
    }
    worker = Worker{};
    return how;
}

std::vector<WorkerResult> WorkerPool::wait(std::chrono::milliseconds max_wait) {
    std::vector<WorkerResult> finished;
    const auto until = Clock::now() + max_wait;
    std::vector<pollfd> fds;
    std::vector<Worker*> polled;
    for (;;) {
        dispatch_queued();
        fds.clear();
        polled.clear();
        auto wake_at = until;
        for (Worker& worker : workers_) {
            if (worker.pid < 0) continue;
            const bool sending = worker.output_sent < worker.output.size();
            fds.push_back({worker.socket, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0});
            polled.push_back(&worker);
            if (worker.task) wake_at = std::min(wake_at, worker.deadline);
        }
        const int ready = poll(fds.data(), fds.size(), poll_timeout_ms(wake_at - Clock::now()));
        if (ready < 0 && errno != EINTR) throw IngestError(system_error("poll failed", errno));

        if (ready > 0) {
            for (std::size_t i = 0; i < polled.size(); ++i) {
                const short events = fds[i].revents;
                if (events & POLLOUT) flush_output(*polled[i]);
                if (events & (POLLIN | POLLHUP | POLLERR)) read_input(*polled[i], finished);
            }
        }
        expire_overdue(finished);
        if (!finished.empty() || Clock::now() >= until) break;
    }
    dispatch_queued();
    unfinished_ -= finished.size();
    return finished;
}

}  // namespace folio::ingest
