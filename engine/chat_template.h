#pragma once
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// Chat prompts: the turn format a model was trained on, told from its
// tokenizer.chat_template by distinctive substrings (as llama.cpp's
// llm_chat_detect_template does) and rendered here in C++ rather than by a
// Jinja interpreter. The rendered text holds special tokens as text
// ("<|im_start|>", "<bos>"): encode it with parse_special and without
// add_special, since templates that want BOS write it themselves.

namespace folio::engine {

// A template Folio does not recognise, or a name it does not know. what()
// is one line saying how to choose one.
class ChatTemplateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class ChatFormat {
    ChatMl,         // <|im_start|>role\n...<|im_end|>: Qwen, SmolLM2
    Llama3,         // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
    Gemma,          // <start_of_turn>user|model\n...<end_of_turn>
    Mistral,        // [INST] ... [/INST]
    DeepSeek,       // <｜User｜>...<｜Assistant｜>: DeepSeek V3 / R1
    DeepSeek2,      // User: ...\n\nAssistant: ...: DeepSeek LLM, V2, V2-Lite
    DeepSeekCoder,  // ### Instruction:\n...\n### Response:\n
};

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

struct ChatTemplate {
    ChatFormat format = ChatFormat::ChatMl;
    // Written as the system turn when the messages have none (SmolLM2's
    // template does this); empty: none.
    std::string default_system;
};

// "chatml", "llama3", "gemma", "mistral", "deepseek", "deepseek-coder".
const char* chat_format_name(ChatFormat format);
// By name; throws ChatTemplateError for another name.
ChatFormat chat_format_from_name(std::string_view name);

// The template of a tokenizer.chat_template text. Throws ChatTemplateError
// when no known format's marker is in it.
ChatTemplate detect_chat_template(std::string_view jinja_source);

// The prompt for messages, ending with the assistant's turn opened when
// add_generation_prompt.
std::string render_chat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt = true);

}  // namespace folio::engine
