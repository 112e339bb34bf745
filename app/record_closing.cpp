#include "app/record_closing.h"

#include <algorithm>
#include <vector>

namespace folio::app {

namespace {

struct OpenArray {
    std::size_t open = 0;                 // where its "[" is
    std::vector<std::size_t> separators;  // its own commas, not those of what it holds
};

// The arrays still open at the end of text, outermost first. The grammar
// wrote compact JSON, so outside strings every character is structure.
std::vector<OpenArray> open_arrays(std::string_view text) {
    std::vector<char> containers;
    std::vector<OpenArray> arrays;
    bool in_string = false, escaped = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        switch (c) {
        case '"': in_string = true; break;
        case '[': containers.push_back('['); arrays.push_back({i, {}}); break;
        case '{': containers.push_back('{'); break;
        case ']':
            if (!containers.empty()) containers.pop_back();
            if (!arrays.empty()) arrays.pop_back();
            break;
        case '}':
            if (!containers.empty()) containers.pop_back();
            break;
        case ',':
            if (!containers.empty() && containers.back() == '[') arrays.back().separators.push_back(i);
            break;
        default: break;
        }
    }
    return arrays;
}

// The comma before the array's first complete item that repeats an earlier one.
std::optional<std::size_t> first_repeat(std::string_view text, const OpenArray& array) {
    std::vector<std::string_view> items;
    std::size_t begin = array.open + 1;
    for (const std::size_t separator : array.separators) {
        const std::string_view item = text.substr(begin, separator - begin);
        if (std::find(items.begin(), items.end(), item) != items.end()) return array.separators[items.size() - 1];
        items.push_back(item);
        begin = separator + 1;
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> close_runaway_array(std::string_view text, engine::GrammarMatcher& matcher) {
    const std::vector<OpenArray> arrays = open_arrays(text);
    std::vector<std::size_t> cuts;  // where the text may end before its "]", best first
    for (const OpenArray& array : arrays)
        if (const std::optional<std::size_t> cut = first_repeat(text, array)) cuts.push_back(*cut);
    for (auto array = arrays.rbegin(); array != arrays.rend(); ++array)
        cuts.push_back(array->separators.empty() ? array->open + 1 : array->separators.back());

    matcher.reset();
    for (const std::size_t cut : cuts) {
        std::string closed(text.substr(0, cut));
        closed += ']';
        if (matcher.allows_text(closed)) {
            matcher.accept_text(closed);
            return closed;
        }
    }
    return std::nullopt;
}

}  // namespace folio::app
