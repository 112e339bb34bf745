#include <QTemporaryDir>
#include <QTest>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "document_builders.h"
#include "index/library_store.h"

using namespace folio;
using namespace folio::index;
using folio::index::testing::make_document;
using folio::index::testing::number_of_sha256;
using folio::index::testing::sha256_of_number;

namespace {

// The writes a crash-test child makes, numbered by generation: which path,
// how many pages and chunks, and whether the write is a failed ingest.
constexpr int kCrashPaths = 7;
std::string crash_path(std::int64_t generation) {
    return "/crash/doc-" + std::to_string(generation % kCrashPaths) + ".pdf";
}
int crash_pages(std::int64_t generation) { return 2 + static_cast<int>(generation % 19); }
int crash_chunks(std::int64_t generation) { return 3 + static_cast<int>(generation * 7 % 41); }
bool crash_fails(std::int64_t generation) { return generation % 5 == 4; }
std::string crash_marker(std::int64_t generation) { return "g" + std::to_string(generation); }

DocumentInput crash_document(std::int64_t generation) {
    DocumentInput input = make_document(crash_path(generation), crash_pages(generation), crash_chunks(generation),
                                        crash_marker(generation), 120, 60);
    input.sha256 = sha256_of_number(generation);
    if (crash_fails(generation)) {
        input.chunks.clear();
        input.error = "generation " + std::to_string(generation) + " failed";
    }
    return input;
}

// What the library should hold for one path after a sequence of writes,
// following the store's policy for failures over an indexed version.
struct ExpectedDocument {
    bool indexed = false;
    std::int64_t generation = -1;         // whose content (indexed) or failure (failed) the row holds
    std::int64_t failed_generation = -1;  // indexed only: a later failed write
    bool operator==(const ExpectedDocument&) const = default;
};
using ExpectedLibrary = std::map<std::string, ExpectedDocument>;

void apply_write(ExpectedLibrary& library, std::int64_t generation) {
    ExpectedDocument& document = library[crash_path(generation)];
    if (!crash_fails(generation))
        document = {true, generation, -1};
    else if (document.indexed)
        document.failed_generation = generation;
    else
        document = {false, generation, -1};
}

// Reads the library back into the same shape, checking on the way that each
// row has exactly the pages, chunks and index entries its write carried.
ExpectedLibrary read_library(LibraryStore& store) {
    ExpectedLibrary library;
    for (const DocumentRecord& record : store.documents()) {
        const std::int64_t generation = number_of_sha256(record.sha256);
        const std::string where = record.path + " generation " + std::to_string(generation);
        if (record.path != crash_path(generation) || record.pages != crash_pages(generation))
            throw std::runtime_error(where + ": row does not match its write");
        ExpectedDocument& document = library[record.path];
        document.generation = generation;
        document.indexed = record.status == DocumentStatus::Indexed;
        const std::vector<StoredPage> pages = store.pages(record.id);
        const std::vector<StoredChunk> chunks = store.chunks(record.id);
        if (!document.indexed) {
            if (!pages.empty() || !chunks.empty()) throw std::runtime_error(where + ": failed row has content");
            continue;
        }
        if (!record.failed_sha256.empty()) document.failed_generation = number_of_sha256(record.failed_sha256);
        if (static_cast<int>(pages.size()) != crash_pages(generation) ||
            static_cast<int>(chunks.size()) != crash_chunks(generation) ||
            static_cast<int>(store.match_chunks(crash_marker(generation), 1000).size()) != crash_chunks(generation))
            throw std::runtime_error(where + ": " + std::to_string(pages.size()) + " pages, " +
                                     std::to_string(chunks.size()) + " chunks");
        for (const StoredPage& page : pages)
            if (page.words.empty() || page.words.front().text != crash_marker(generation))
                throw std::runtime_error(where + ": page " + std::to_string(page.number) + " is not its own");
    }
    return library;
}

// Child side of the crash test: writes generations from `first` on, telling
// the parent through `report` after each commit. Never returns.
[[noreturn]] void write_until_killed(const std::string& directory, std::int64_t first, int report) {
    alarm(30);  // never outlive a parent that failed to kill us
    try {
        auto store = LibraryStore::open(directory);
        for (std::int64_t generation = first;; ++generation) {
            store->put_document(crash_document(generation));
            if (write(report, &generation, sizeof generation) != sizeof generation) _exit(3);
        }
    } catch (...) {
        _exit(2);
    }
}

std::string exit_description(int status) {
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

}  // namespace

// Both tests fork; the parent never holds a LibraryStore across a fork,
// since SQLite's locks do not survive into a child (see library_store.h).
class LibraryStoreProcessesTest : public QObject {
    Q_OBJECT

private slots:
    void two_processes_write_one_library() {
        QTemporaryDir directory;
        const std::string library = directory.path().toStdString();
        constexpr int kEach = 25;
        auto write_documents = [&](const std::string& who) {
            auto store = LibraryStore::open(library);
            for (int i = 0; i < kEach; ++i) {
                store->put_document(make_document("/" + who + "/" + std::to_string(i) + ".pdf", 3, 5, who));
                DocumentInput shared = make_document("/shared.pdf", 2, 2, who);
                shared.sha256 = sha256_of_number(i);
                store->put_document(shared);
                store->documents();
            }
        };
        const pid_t child = fork();
        QVERIFY(child >= 0);
        if (child == 0) {
            try {
                write_documents("child");
                _exit(0);
            } catch (...) {
                _exit(1);
            }
        }
        write_documents("parent");
        int status = 0;
        QCOMPARE(waitpid(child, &status, 0), child);
        QVERIFY2(WIFEXITED(status) && WEXITSTATUS(status) == 0, exit_description(status).c_str());

        auto store = LibraryStore::open(library);
        QCOMPARE(store->documents().size(), std::size_t(2 * kEach + 1));
        // Every chunk carries its writer's name; /shared.pdf's last writer is either.
        const std::size_t by_child = store->match_chunks("child", 1000).size();
        const std::size_t by_parent = store->match_chunks("parent", 1000).size();
        QCOMPARE(by_child + by_parent, std::size_t(2 * kEach * 5 + 2));
        QVERIFY(by_child >= kEach * 5u && by_parent >= kEach * 5u);
        for (const DocumentRecord& record : store->documents()) {
            QCOMPARE(store->pages(record.id).size(), std::size_t(record.pages));
            QCOMPARE(store->chunks(record.id).size(), record.path == "/shared.pdf" ? 2u : 5u);
        }
        QCOMPARE(store->integrity_check(), std::string("ok"));
    }

    void survives_being_killed_while_writing() {
        QTemporaryDir directory;
        const std::string library = directory.path().toStdString();
        const unsigned seed = std::random_device{}();
        qInfo("kill timing seed %u", seed);
        std::mt19937 random(seed);
        ExpectedLibrary expected;
        std::int64_t next_generation = 0;
        std::int64_t committed = 0;

        for (int round = 0; round < 8; ++round) {
            int report[2];
            QCOMPARE(pipe(report), 0);
            const pid_t child = fork();
            QVERIFY(child >= 0);
            if (child == 0) {
                close(report[0]);
                write_until_killed(library, next_generation, report[1]);
            }
            close(report[1]);
            // The first round may die before or while creating the schema.
            const int delay_ms = round == 0 ? static_cast<int>(random() % 8)
                                            : 40 + static_cast<int>(random() % 260);
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            QCOMPARE(kill(child, SIGKILL), 0);
            int status = 0;
            QCOMPARE(waitpid(child, &status, 0), child);
            QVERIFY2(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, exit_description(status).c_str());

            // Everything the child reported was committed; the write it was
            // in when killed may or may not have been.
            std::int64_t generation = 0;
            while (read(report[0], &generation, sizeof generation) == sizeof generation) {
                QCOMPARE(generation, next_generation);
                apply_write(expected, generation);
                ++next_generation;
                ++committed;
            }
            close(report[0]);
            ExpectedLibrary if_last_committed = expected;
            apply_write(if_last_committed, next_generation);

            auto store = LibraryStore::open(library);
            QCOMPARE(store->integrity_check(), std::string("ok"));
            ExpectedLibrary found;
            try {
                found = read_library(*store);
            } catch (const std::exception& e) {
                QFAIL(e.what());
            }
            if (found == if_last_committed) {
                expected = found;
                ++next_generation;
                ++committed;
            }
            QVERIFY2(found == expected, qPrintable(QString("round %1: library differs from the %2 reported writes")
                                                       .arg(round)
                                                       .arg(next_generation)));
        }
        qInfo("%lld writes committed over 8 kills", static_cast<long long>(committed));
        QVERIFY2(committed >= 8, "the children hardly wrote anything; the test proved little");
        auto store = LibraryStore::open(library);
        QVERIFY(store->put_document(make_document("/after/crashes.pdf", 1, 1, "after")) > 0);
        QCOMPARE(store->integrity_check(), std::string("ok"));
    }
};

QTEST_GUILESS_MAIN(LibraryStoreProcessesTest)
#include "tst_library_store_processes.moc"
