//! The backbone's chat template (ChatML, as SmolLM2-Instruct ships it), applied in Rust.
use serde::{Deserialize, Serialize};

/// System prompt the template inserts when the conversation does not start with one.
pub const DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// Renders messages exactly as the HF chat template does:
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, a default system message first when
/// the first message is not a system one, then `<|im_start|>assistant\n` if asked.
pub fn render(messages: &[ChatMessage], add_generation_prompt: bool) -> String {
    let mut s = String::new();
    if messages.first().map(|m| m.role.as_str()) != Some("system") {
        s.push_str("<|im_start|>system\n");
        s.push_str(DEFAULT_SYSTEM);
        s.push_str("<|im_end|>\n");
    }
    for m in messages {
        s.push_str("<|im_start|>");
        s.push_str(&m.role);
        s.push('\n');
        s.push_str(&m.content);
        s.push_str("<|im_end|>\n");
    }
    if add_generation_prompt {
        s.push_str("<|im_start|>assistant\n");
    }
    s
}

/// One user turn with the default system prompt, ready for generation.
pub fn user_prompt(instruction: &str) -> String {
    render(&[ChatMessage::new("user", instruction)], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_default_system_and_generation_prompt() {
        let s = user_prompt("Describe this ECG.");
        assert_eq!(
            s,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nDescribe this ECG.<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn keeps_an_explicit_system_message() {
        let s = render(
            &[
                ChatMessage::new("system", "S"),
                ChatMessage::new("user", "U"),
            ],
            false,
        );
        assert_eq!(
            s,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
        );
    }
}
