#include <QtTest>

#include <string>
#include <vector>

#include "engine/chat_template.h"

using namespace folio::engine;

// Expected strings: transformers 5.24.0's render_jinja_template (what
// apply_chat_template runs) with add_generation_prompt=True, on SmolLM2-135M-
// Instruct's tokenizer.chat_template (from the installed GGUF), Meta-Llama-3-
// 8B-Instruct's and Gemma 3's published templates (bos_token "<|begin_of_text|>",
// "<bos>"). Generated once; Mistral and DeepSeek are not checked against
// transformers.

namespace {

const std::vector<ChatMessage> kUserOnly = {{"user", "What is 2+2?"}};
const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello!"}, {"user", "Bye"}};

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
    void rendersMistralAndDeepSeek();
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

// Layouts as llama.cpp's llm_chat_apply_template writes them (not checked
// against transformers).
void TestChatTemplate::rendersMistralAndDeepSeek() {
    QCOMPARE(render_chat({.format = ChatFormat::Mistral}, kUserOnly), std::string("<s>[INST] What is 2+2? [/INST]"));
    QCOMPARE(render_chat({.format = ChatFormat::DeepSeek}, kUserOnly),
             std::string("<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜>"));
    QCOMPARE(render_chat({.format = ChatFormat::DeepSeekCoder}, kUserOnly),
             std::string("### Instruction:\nWhat is 2+2?\n### Response:\n"));
}

void TestChatTemplate::namesRoundTrip() {
    for (ChatFormat format : {ChatFormat::ChatMl, ChatFormat::Llama3, ChatFormat::Gemma, ChatFormat::Mistral,
                              ChatFormat::DeepSeek, ChatFormat::DeepSeekCoder})
        QCOMPARE(chat_format_from_name(chat_format_name(format)), format);
}

QTEST_GUILESS_MAIN(TestChatTemplate)
#include "tst_chat_template.moc"
