#pragma once
// The `folio` commands that live outside cli.cpp, each in its own file.
// `library_dir` is --library (empty: Library::default_directory()); `args`
// are the words after the command's name.

#include <string>
#include <vector>

namespace folio::app {

int command_ask(const std::string& library_dir, const std::vector<std::string>& args);        // ask_command.cpp
int command_summarize(const std::string& library_dir, const std::vector<std::string>& args);  // summarize_command.cpp
int command_extract(const std::string& library_dir, const std::vector<std::string>& args);    // extract_command.cpp
int command_batch(const std::string& library_dir, const std::vector<std::string>& args);      // batch_command.cpp
int command_pack(const std::vector<std::string>& args);                                       // pack_command.cpp

}  // namespace folio::app
