//! Training data: PTB-XL and MIMIC-IV-ECG loaders, German/Swedish -> English report
//! translation, instruction paraphrases and the JSONL example format.
//!
//! `prepare_ptbxl` / `prepare_mimic` are the entry points; everything else is public so the
//! trainer and the benchmark can reuse the pieces (e.g. `translate` for reference reports).

mod csvio;
pub mod dataset;
pub mod error;
pub mod instructions;
pub mod mimic;
pub mod phrases;
pub mod ptbxl;
pub mod text;
pub mod translate;

pub use dataset::{
    prepare_mimic, prepare_ptbxl, read_jsonl, write_jsonl, Example, Source, Split, Stats,
};
pub use error::DataError;
pub use instructions::{sample_instruction, DEFAULT_INSTRUCTION, INSTRUCTIONS};
pub use translate::{
    coverage, detect_language, translate, Coverage, Language, Translation, Translator,
};
