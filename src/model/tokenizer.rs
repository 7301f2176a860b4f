//! The backbone's tokenizer, built from GGUF metadata into a `tokenizers::Tokenizer`: byte-level
//! BPE with the file's vocab and merges, a ByteLevel pre-tokenizer without prefix space (what HF
//! builds for SmolLM2; a prefix space would give the first word the wrong id), and the control
//! tokens as special added tokens.
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::error::{ModelError, Result};

/// GGUF token type for control tokens (`<|im_start|>` and friends).
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Vocabulary as stored in GGUF metadata.
#[derive(Debug, Clone)]
pub struct GgufVocab {
    pub tokens: Vec<String>,
    pub merges: Vec<String>,
    pub token_types: Vec<i32>,
}

pub fn from_gguf_vocab(v: &GgufVocab) -> Result<Tokenizer> {
    let vocab: Vocab = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges = v
        .merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| ModelError::Tokenizer(format!("malformed merge `{m}`")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    let specials: Vec<AddedToken> = v
        .tokens
        .iter()
        .zip(v.token_types.iter())
        .filter(|(_, &ty)| ty == TOKEN_TYPE_CONTROL)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tok.add_special_tokens(&specials);
    Ok(tok)
}

/// Encodes text (special tokens in the text are recognised) without adding anything.
pub fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    tok.encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| ModelError::Tokenizer(e.to_string()))
}

/// Decodes ids, skipping special tokens.
pub fn decode(tok: &Tokenizer, ids: &[u32]) -> Result<String> {
    tok.decode(ids, true)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))
}

/// The id of a token that must exist (e.g. `<|im_end|>`).
pub fn token_id(tok: &Tokenizer, token: &str) -> Result<u32> {
    tok.token_to_id(token)
        .ok_or_else(|| ModelError::Tokenizer(format!("token `{token}` is not in the vocabulary")))
}
