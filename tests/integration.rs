//! The crate's one integration test binary; each concern lives in its own module.
mod integration {
    pub mod common;
    /// `trainer eval`: the benchmark pipeline, mapper and format readers.
    pub mod eval;
    pub mod golden_llm;
    pub mod golden_tokenizer;
    pub mod lora_merge;
    pub mod quantized;
    /// Report-generation metrics against the reference tools' outputs.
    pub mod metrics {
        pub mod bertscore;
        pub mod coco;
        pub mod common;
        pub mod meit;
        pub mod nltk;
        pub mod porter_wordnet;
        pub mod report;
        pub mod rouge_score;
    }
    pub mod train_data;
    /// HTTP behaviour against the mock backend and a tiny tokenizer built in code.
    pub mod serving {
        pub mod common;
        pub mod engine;
        pub mod errors;
        pub mod generate;
        pub mod lifecycle;
        pub mod spec;
    }
    pub mod train_loop;
    pub mod train_model;
}
