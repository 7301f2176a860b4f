//! Loading a llama.cpp GGUF file: hyperparameters, tensors dequantized to f32 in HF naming and
//! layout, and the tokenizer vocabulary.
use std::fs::File;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use super::config::LlamaConfig;
use super::error::{ModelError, Result};
use super::tokenizer::GgufVocab;
use super::weights::Weights;

/// Everything a GGUF file gives us.
pub struct GgufModel {
    pub config: LlamaConfig,
    pub weights: Weights,
    pub vocab: GgufVocab,
}

fn meta<'a>(c: &'a Content, path: &Path, key: &str) -> Result<&'a Value> {
    c.metadata
        .get(key)
        .ok_or_else(|| ModelError::format(path, format!("metadata key `{key}` is missing")))
}

fn meta_usize(c: &Content, path: &Path, key: &str) -> Result<usize> {
    let v = meta(c, path, key)?;
    let n = v
        .to_u64()
        .or_else(|_| v.to_u32().map(u64::from))
        .or_else(|_| v.to_i32().map(|x| x.max(0) as u64))
        .map_err(|e| ModelError::format(path, format!("metadata `{key}`: {e}")))?;
    Ok(n as usize)
}

fn meta_f64(c: &Content, path: &Path, key: &str) -> Result<f64> {
    meta(c, path, key)?
        .to_f32()
        .map(f64::from)
        .map_err(|e| ModelError::format(path, format!("metadata `{key}`: {e}")))
}

fn meta_strings(c: &Content, path: &Path, key: &str) -> Result<Vec<String>> {
    let arr = meta(c, path, key)?
        .to_vec()
        .map_err(|e| ModelError::format(path, format!("metadata `{key}`: {e}")))?;
    arr.iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| ModelError::format(path, format!("metadata `{key}`: {e}")))
        })
        .collect()
}

/// Undo llama.cpp's row permutation of `attn_q` / `attn_k` (interleaved RoPE layout) so the
/// weights are in HF's rotate-half layout.
fn unpermute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let d = rows / heads;
    // (heads, D/2, 2, in) -> (heads, 2, D/2, in) -> (rows, in)
    Ok(w.reshape((heads, d / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

fn open(path: &Path) -> Result<(File, Content)> {
    let mut file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let content = Content::read(&mut file).map_err(|e| ModelError::format(path, e.to_string()))?;
    let arch = meta(&content, path, "general.architecture")?
        .to_string()
        .map_err(|e| ModelError::format(path, e.to_string()))?
        .clone();
    if arch != "llama" {
        return Err(ModelError::format(
            path,
            format!("architecture `{arch}` is not supported (llama only)"),
        ));
    }
    Ok((file, content))
}

fn vocab(content: &Content, path: &Path) -> Result<GgufVocab> {
    let tokens = meta_strings(content, path, "tokenizer.ggml.tokens")?;
    let merges = meta_strings(content, path, "tokenizer.ggml.merges")?;
    let token_types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| ModelError::format(path, e.to_string()))?
            .iter()
            .map(|x| x.to_i32().unwrap_or(1))
            .collect(),
        None => vec![1; tokens.len()],
    };
    Ok(GgufVocab {
        tokens,
        merges,
        token_types,
    })
}

/// Reads only the tokenizer vocabulary (metadata; no tensor data).
pub fn read_vocab(path: &Path) -> Result<GgufVocab> {
    let (_, content) = open(path)?;
    vocab(&content, path)
}

/// Reads a GGUF file and dequantizes every tensor to f32 on `device`.
pub fn load(path: &Path, device: &Device) -> Result<GgufModel> {
    let (mut file, content) = open(path)?;
    let vocab = vocab(&content, path)?;
    let heads = meta_usize(&content, path, "llama.attention.head_count")?;
    let kv_heads = meta_usize(&content, path, "llama.attention.head_count_kv")?;
    let has_output = content.tensor_infos.contains_key("output.weight");
    let config = LlamaConfig {
        vocab_size: vocab.tokens.len(),
        hidden_size: meta_usize(&content, path, "llama.embedding_length")?,
        intermediate_size: meta_usize(&content, path, "llama.feed_forward_length")?,
        num_hidden_layers: meta_usize(&content, path, "llama.block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        rms_norm_eps: meta_f64(&content, path, "llama.attention.layer_norm_rms_epsilon")?,
        rope_theta: meta_f64(&content, path, "llama.rope.freq_base").unwrap_or(10000.0),
        max_position_embeddings: meta_usize(&content, path, "llama.context_length").unwrap_or(8192),
        tie_word_embeddings: !has_output,
    };
    let mut weights = Weights::default();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    for gname in names {
        let q = content
            .tensor(&mut file, &gname, device)
            .map_err(|e| ModelError::format(path, format!("tensor `{gname}`: {e}")))?;
        let mut t = q.dequantize(device)?;
        let hf = hf_name(&gname).ok_or_else(|| {
            ModelError::format(path, format!("unexpected tensor `{gname}` for llama"))
        })?;
        if gname.ends_with("attn_q.weight") {
            t = unpermute(&t, heads)?;
        } else if gname.ends_with("attn_k.weight") {
            t = unpermute(&t, kv_heads)?;
        }
        weights.insert(hf, t);
    }
    Ok(GgufModel {
        config,
        weights,
        vocab,
    })
}

/// GGUF tensor name -> HF name.
fn hf_name(g: &str) -> Option<String> {
    match g {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = g.strip_prefix("blk.")?;
    let (idx, part) = rest.split_once('.')?;
    let i: usize = idx.parse().ok()?;
    let hf = match part {
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        _ => return None,
    };
    Some(format!("model.layers.{i}.{hf}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hf() {
        assert_eq!(
            hf_name("blk.3.attn_k.weight").as_deref(),
            Some("model.layers.3.self_attn.k_proj.weight")
        );
        assert_eq!(
            hf_name("token_embd.weight").as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(hf_name("blk.x.attn_k.weight"), None);
        assert_eq!(hf_name("rope_freqs.weight"), None);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() -> Result<()> {
        // llama.cpp: w.reshape(h, 2, d/2, in).swapaxes(1, 2)
        let dev = Device::Cpu;
        let (h, d, cols) = (2usize, 4usize, 3usize);
        let hf = Tensor::arange(0f32, (h * d * cols) as f32, &dev)?.reshape((h * d, cols))?;
        let permuted = hf
            .reshape((h, 2, d / 2, cols))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((h * d, cols))?;
        let back = unpermute(&permuted, h)?;
        assert_eq!(back.to_vec2::<f32>()?, hf.to_vec2::<f32>()?);
        Ok(())
    }
}
