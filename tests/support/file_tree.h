#pragma once
// What a folder holds, for suites that check a store wrote or left files.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace folio::test {

// Every file and folder under `root`, relative to it ('/'-separated), sorted;
// empty when root does not exist.
inline std::vector<std::string> files_under(const std::filesystem::path& root) {
    std::vector<std::string> found;
    if (!std::filesystem::exists(root)) return found;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
        found.push_back(std::filesystem::relative(entry.path(), root).generic_string());
    std::sort(found.begin(), found.end());
    return found;
}

}  // namespace folio::test
