#include "engine/chat_template.h"

namespace folio::engine {
namespace {

constexpr std::string_view kSmolLmSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
constexpr std::string_view kQwenSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
constexpr const char* kChooseHint =
    "; pass --chat-template chatml|llama3|gemma|mistral|deepseek|deepseek2|deepseek-coder, or --raw for no template";

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// Jinja's trim filter: strips ASCII whitespace at both ends.
std::string trimmed(std::string_view text) {
    const std::string_view space = " \t\n\r\f\v";
    const std::size_t first = text.find_first_not_of(space);
    if (first == std::string_view::npos) return {};
    return std::string(text.substr(first, text.find_last_not_of(space) - first + 1));
}

std::string render_chatml(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages) {
    std::string out;
    if (!chat_template.default_system.empty() && (messages.empty() || messages.front().role != "system"))
        out += "<|im_start|>system\n" + chat_template.default_system + "<|im_end|>\n";
    for (const ChatMessage& message : messages)
        out += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
    return out;
}

std::string render_llama3(const std::vector<ChatMessage>& messages) {
    std::string out = "<|begin_of_text|>";
    for (const ChatMessage& message : messages)
        out += "<|start_header_id|>" + message.role + "<|end_header_id|>\n\n" + trimmed(message.content) + "<|eot_id|>";
    return out;
}

// Gemma has no system turn: the system text opens the first user turn.
std::string render_gemma(const std::vector<ChatMessage>& messages) {
    std::string out = "<bos>";
    std::string system_prefix;
    for (const ChatMessage& message : messages) {
        if (message.role == "system") {
            system_prefix = message.content + "\n\n";
            continue;
        }
        const std::string role = message.role == "assistant" ? "model" : message.role;
        out += "<start_of_turn>" + role + "\n" + system_prefix + trimmed(message.content) + "<end_of_turn>\n";
        system_prefix.clear();
    }
    return out;
}

// Mistral Instruct v0.2: a system text opens the first user turn.
std::string render_mistral(const std::vector<ChatMessage>& messages) {
    std::string out = "<s>";
    std::string system_prefix;
    for (const ChatMessage& message : messages) {
        if (message.role == "system") system_prefix = message.content + "\n\n";
        else if (message.role == "user") {
            out += "[INST] " + system_prefix + message.content + " [/INST]";
            system_prefix.clear();
        } else {
            out += message.content + "</s>";
        }
    }
    return out;
}

constexpr std::string_view kDeepSeekBos = "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
constexpr std::string_view kDeepSeekEos = "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";

// DeepSeek-V3 and R1: every system text first, joined by blank lines; an
// assistant turn keeps only what follows its reasoning's "</think>".
std::string render_deepseek(const std::vector<ChatMessage>& messages) {
    std::string out(kDeepSeekBos);
    bool first_system = true;
    for (const ChatMessage& message : messages) {
        if (message.role != "system") continue;
        if (!first_system) out += "\n\n";
        out += message.content;
        first_system = false;
    }
    for (const ChatMessage& message : messages) {
        if (message.role == "user") {
            out += "<\xEF\xBD\x9CUser\xEF\xBD\x9C>" + message.content;
        } else if (message.role == "assistant") {
            const std::size_t think_end = message.content.rfind("</think>");
            const std::string_view answer = think_end == std::string::npos
                                                ? std::string_view(message.content)
                                                : std::string_view(message.content).substr(think_end + 8);
            out += "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";
            out += answer;
            out += kDeepSeekEos;
        }
    }
    return out;
}

// DeepSeek LLM and V2: "User: ...", "Assistant: ..." turns, system text in place.
std::string render_deepseek2(const std::vector<ChatMessage>& messages) {
    std::string out(kDeepSeekBos);
    for (const ChatMessage& message : messages) {
        if (message.role == "user") out += "User: " + message.content + "\n\n";
        else if (message.role == "assistant") out += "Assistant: " + message.content + std::string(kDeepSeekEos);
        else if (message.role == "system") out += message.content + "\n\n";
    }
    return out;
}

std::string render_deepseek_coder(const std::vector<ChatMessage>& messages) {
    std::string out;
    for (const ChatMessage& message : messages) {
        if (message.role == "system") out += message.content + "\n";
        else if (message.role == "user") out += "### Instruction:\n" + message.content + "\n";
        else out += "### Response:\n" + message.content + "\n<|EOT|>\n";
    }
    return out;
}

}  // namespace

const char* chat_format_name(ChatFormat format) {
    switch (format) {
    case ChatFormat::ChatMl: return "chatml";
    case ChatFormat::Llama3: return "llama3";
    case ChatFormat::Gemma: return "gemma";
    case ChatFormat::Mistral: return "mistral";
    case ChatFormat::DeepSeek: return "deepseek";
    case ChatFormat::DeepSeek2: return "deepseek2";
    case ChatFormat::DeepSeekCoder: return "deepseek-coder";
    }
    return "unknown";
}

ChatFormat chat_format_from_name(std::string_view name) {
    for (ChatFormat format : {ChatFormat::ChatMl, ChatFormat::Llama3, ChatFormat::Gemma, ChatFormat::Mistral,
                              ChatFormat::DeepSeek, ChatFormat::DeepSeek2, ChatFormat::DeepSeekCoder})
        if (name == chat_format_name(format)) return format;
    throw ChatTemplateError("unknown chat template '" + std::string(name) + "'" + kChooseHint);
}

ChatTemplate detect_chat_template(std::string_view source) {
    ChatTemplate result;
    if (contains(source, "<|im_start|>")) {
        result.format = ChatFormat::ChatMl;
        if (contains(source, kSmolLmSystem)) result.default_system = kSmolLmSystem;
        else if (contains(source, kQwenSystem)) result.default_system = kQwenSystem;
    } else if (contains(source, "<|start_header_id|>")) {
        result.format = ChatFormat::Llama3;
    } else if (contains(source, "<start_of_turn>")) {
        result.format = ChatFormat::Gemma;
    } else if (contains(source, "<\xEF\xBD\x9CUser\xEF\xBD\x9C>")) {
        result.format = ChatFormat::DeepSeek;
    } else if (contains(source, "'Assistant: ' + message['content'] + eos_token")) {
        result.format = ChatFormat::DeepSeek2;
    } else if (contains(source, "### Instruction:")) {
        result.format = ChatFormat::DeepSeekCoder;
    } else if (contains(source, "[INST]")) {
        result.format = ChatFormat::Mistral;
    } else {
        std::string start(source.substr(0, 40));
        for (char& c : start)
            if (c == '\n' || c == '\r') c = ' ';
        throw ChatTemplateError("the model's chat template (\"" + start + "...\") is not one Folio knows" +
                                kChooseHint);
    }
    return result;
}

std::string render_chat(const ChatTemplate& chat_template, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
    std::string out;
    std::string generation_prompt;
    switch (chat_template.format) {
    case ChatFormat::ChatMl:
        out = render_chatml(chat_template, messages);
        generation_prompt = "<|im_start|>assistant\n";
        break;
    case ChatFormat::Llama3:
        out = render_llama3(messages);
        generation_prompt = "<|start_header_id|>assistant<|end_header_id|>\n\n";
        break;
    case ChatFormat::Gemma:
        out = render_gemma(messages);
        generation_prompt = "<start_of_turn>model\n";
        break;
    case ChatFormat::Mistral:
        out = render_mistral(messages);
        break;
    case ChatFormat::DeepSeek:
        out = render_deepseek(messages);
        generation_prompt = "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";
        break;
    case ChatFormat::DeepSeek2:
        out = render_deepseek2(messages);
        generation_prompt = "Assistant:";
        break;
    case ChatFormat::DeepSeekCoder:
        out = render_deepseek_coder(messages);
        generation_prompt = "### Response:\n";
        break;
    }
    if (add_generation_prompt) out += generation_prompt;
    return out;
}

}  // namespace folio::engine
