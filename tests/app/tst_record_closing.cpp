#include <QtTest>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/json_schema.h"
#include "app/record_closing.h"
#include "engine/gguf.h"
#include "engine/grammar.h"
#include "engine/vocab.h"

using namespace folio;
using nlohmann::ordered_json;

namespace {

// Byte-level BPE: every byte has a token, so any text can be spelled.
const engine::Vocab& gpt2_vocab() {
    static const engine::Vocab vocab(engine::GgufFile::open(std::filesystem::path(FOLIO_TEST_DATA) / "tokenizer/gpt2.gguf"));
    return vocab;
}

// JSON written with single quotes, to keep the tests readable: each ' becomes ".
std::string q(const char* text) {
    std::string json(text);
    std::replace(json.begin(), json.end(), '\'', '"');
    return json;
}

engine::Grammar grammar_of(const std::string& schema) {
    return engine::Grammar::parse(app::JsonSchema::parse(ordered_json::parse(schema)).grammar());
}

const std::string kNoteSchema = q("{"
    "  'type': 'object',"
    "  'properties': {"
    "    'name': {'type': ['string', 'null']},"
    "    'medications': {'type': 'array', 'items': {'type': 'string'}},"
    "    'diagnoses': {'type': 'array', 'items': {"
    "      'type': 'object',"
    "      'properties': {'name': {'type': 'string'}, 'codes': {'type': 'array', 'items': {'type': 'string'}}},"
    "      'required': ['name', 'codes'], 'additionalProperties': false}},"
    "    'allergies': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 2}"
    "  },"
    "  'required': ['name', 'medications', 'diagnoses', 'allergies'],"
    "  'additionalProperties': false"
    "}");

// close_runaway_array with a matcher of its own.
std::optional<std::string> close(const std::string& text, const engine::Grammar& grammar) {
    engine::GrammarMatcher matcher(grammar, gpt2_vocab());
    return app::close_runaway_array(text, matcher);
}

// Whether the text, then `rest`, is a whole record of the grammar.
bool completes(const engine::Grammar& grammar, const std::string& text, const std::string& rest) {
    engine::GrammarMatcher matcher(grammar, gpt2_vocab());
    if (!matcher.allows_text(text + rest)) return false;
    matcher.accept_text(text + rest);
    return matcher.can_end();
}

}  // namespace

class TestRecordClosing : public QObject {
    Q_OBJECT
private slots:
    void cutsBeforeTheFirstRepeatedItem();
    void cutsTheOuterArrayWhoseItemsRepeat();
    void keepsEveryCompleteItemWhenNoneRepeats();
    void commasInsideStringsAreNotItemEnds();
    void leavesAnArrayItsMinItemsWouldBreak();
    void nothingToCloseOutsideArrays();
};

void TestRecordClosing::cutsBeforeTheFirstRepeatedItem() {
    const engine::Grammar grammar = grammar_of(kNoteSchema);
    const std::string text = q("{'name':'Ann','medications':['aspirin','lisinopril','aspirin','lisinopril','aspi");
    const std::optional<std::string> closed = close(text, grammar);
    QVERIFY(closed);
    QCOMPARE(*closed, std::string(q("{'name':'Ann','medications':['aspirin','lisinopril']")));
    QVERIFY(completes(grammar, *closed, q(",'diagnoses':[],'allergies':['dust','pollen']}")));
    // The matcher given is left where the closed text ends, for generation to go on.
    engine::GrammarMatcher matcher(grammar, gpt2_vocab());
    matcher.accept_text(q("{'name':'Bob'"));
    QCOMPARE(app::close_runaway_array(text, matcher).value_or("?"), *closed);
    const std::string rest = q(",'diagnoses':[],'allergies':['dust','pollen']}");
    QVERIFY(matcher.allows_text(rest));
    matcher.accept_text(rest);
    QVERIFY(matcher.can_end());
}

void TestRecordClosing::cutsTheOuterArrayWhoseItemsRepeat() {
    const engine::Grammar grammar = grammar_of(kNoteSchema);
    const std::string text =
        q("{'name':null,'medications':[],'diagnoses':[{'name':'flu','codes':['J11']},{'name':'cough','codes':[]},"
          "{'name':'flu','codes':['J11']},{'name':'cough','codes':['R0");
    const std::optional<std::string> closed = close(text, grammar);
    QVERIFY(closed);
    QCOMPARE(*closed, std::string(q("{'name':null,'medications':[],'diagnoses':[{'name':'flu','codes':['J11']},"
                                    "{'name':'cough','codes':[]}]")));
    QVERIFY(completes(grammar, *closed, q(",'allergies':['dust','pollen']}")));
}

void TestRecordClosing::keepsEveryCompleteItemWhenNoneRepeats() {
    const engine::Grammar grammar = grammar_of(kNoteSchema);
    const std::string text = q("{'name':'Ann','medications':['aspirin','lisinopril','metformin','atorvas");
    const std::optional<std::string> closed = close(text, grammar);
    QVERIFY(closed);
    QCOMPARE(*closed, std::string(q("{'name':'Ann','medications':['aspirin','lisinopril','metformin']")));

    // Ran out before the first item was complete: the array closes empty.
    const std::string early = q("{'name':'Ann','medications':['aspi");
    QCOMPARE(close(early, grammar).value_or("?"),
             std::string(q("{'name':'Ann','medications':[]")));
}

void TestRecordClosing::commasInsideStringsAreNotItemEnds() {
    const engine::Grammar grammar = grammar_of(kNoteSchema);
    const std::string text = q("{'name':'Ann','medications':['aspirin, 81 mg','aspirin, 81 mg','aspirin, 8");
    QCOMPARE(close(text, grammar).value_or("?"),
             std::string(q("{'name':'Ann','medications':['aspirin, 81 mg']")));
    // An escaped quote does not end the string either.
    const std::string escaped = q("{'name':'Ann','medications':['say \\'a, b\\'','x','say \\'a, b\\'','x','s");
    QCOMPARE(close(escaped, grammar).value_or("?"),
             std::string(q("{'name':'Ann','medications':['say \\'a, b\\'','x']")));
}

void TestRecordClosing::leavesAnArrayItsMinItemsWouldBreak() {
    const engine::Grammar grammar = grammar_of(kNoteSchema);
    // allergies needs two items: closing it after one is not a record's start.
    const std::string text = q("{'name':'Ann','medications':[],'diagnoses':[],'allergies':['dust','du");
    QVERIFY(!close(text, grammar));
}

void TestRecordClosing::nothingToCloseOutsideArrays() {
    const engine::Grammar grammar = grammar_of(kNoteSchema);
    QVERIFY(!close(q("{'name':'Ann Ann Ann Ann"), grammar));
    QVERIFY(!close("", grammar));
}

QTEST_APPLESS_MAIN(TestRecordClosing)
#include "tst_record_closing.moc"
