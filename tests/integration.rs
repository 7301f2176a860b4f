//! The crate's one integration test binary; each concern lives in its own module.
mod integration {
    pub mod common;
    pub mod golden_llm;
    pub mod golden_tokenizer;
    pub mod lora_merge;
    pub mod train_data;
    pub mod train_loop;
    pub mod train_model;
}
