//! Validation shared by all generation endpoints: sampling parameters, stop strings, prompt
//! tokenization. Every error names the field, the bound and the value received.

use serde::Deserialize;
use tokenizers::Tokenizer;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::engine::SamplingParams;
use crate::settings::LimitSettings;

/// `stop`: one string or an array of strings.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StopInput {
    One(String),
    Many(Vec<String>),
}

/// Raw sampling fields of a request (wide types so out-of-range values get our message).
#[derive(Debug, Clone, Default)]
pub struct SamplingInput {
    /// (field name used in messages, value)
    pub max_tokens: Option<(&'static str, i64)>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub seed: Option<i64>,
    pub repetition_penalty: Option<f64>,
    pub stop: Option<StopInput>,
}

/// What the engine gets.
#[derive(Debug, Clone)]
pub struct ValidSampling {
    pub params: SamplingParams,
    pub max_tokens: usize,
    pub stop: Vec<String>,
}

impl SamplingInput {
    pub fn validate(
        self,
        limits: &LimitSettings,
        default_temperature: f32,
    ) -> Result<ValidSampling, ApiError> {
        let max_tokens = match self.max_tokens {
            None => limits.default_max_tokens,
            Some((name, v)) => {
                if v < 1 || v > limits.max_tokens_limit as i64 {
                    return Err(ApiError::value(
                        name,
                        format!(
                            "{name} must be between 1 and {}, got {v}",
                            limits.max_tokens_limit
                        ),
                    ));
                }
                v as usize
            }
        };
        let temperature = match self.temperature {
            None => default_temperature,
            Some(t) if (0.0..=2.0).contains(&t) => t as f32,
            Some(t) => {
                return Err(ApiError::value(
                    "temperature",
                    format!("temperature must be between 0 and 2, got {t}"),
                ))
            }
        };
        let top_p = match self.top_p {
            None => 1.0,
            Some(p) if p > 0.0 && p <= 1.0 => p as f32,
            Some(p) => {
                return Err(ApiError::value(
                    "top_p",
                    format!("top_p must be greater than 0 and at most 1, got {p}"),
                ))
            }
        };
        let top_k = match self.top_k {
            None | Some(0) => None,
            Some(k) if k > 0 => Some(k as usize),
            Some(k) => {
                return Err(ApiError::value(
                    "top_k",
                    format!("top_k must be at least 0 (0 = disabled), got {k}"),
                ))
            }
        };
        let repetition_penalty = match self.repetition_penalty {
            None => 1.0,
            Some(r) if r > 0.0 && r <= 10.0 => r as f32,
            Some(r) => {
                return Err(ApiError::value(
                    "repetition_penalty",
                    format!("repetition_penalty must be greater than 0 and at most 10, got {r}"),
                ))
            }
        };
        let stop = match self.stop {
            None => Vec::new(),
            Some(StopInput::One(s)) => vec![s],
            Some(StopInput::Many(v)) => v,
        };
        if stop.len() > limits.max_stop_sequences {
            return Err(ApiError::value(
                "stop",
                format!(
                    "stop must have at most {} entries, got {}",
                    limits.max_stop_sequences,
                    stop.len()
                ),
            ));
        }
        if let Some(i) = stop.iter().position(String::is_empty) {
            return Err(ApiError::value(
                format!("stop[{i}]"),
                format!("stop[{i}] must not be empty, got \"\""),
            ));
        }
        Ok(ValidSampling {
            params: SamplingParams {
                temperature,
                top_k,
                top_p,
                seed: self.seed.map(|s| s as u64),
                repetition_penalty,
            },
            max_tokens,
            stop,
        })
    }
}

/// Tokenize a rendered prompt (special tokens are added tokens of the tokenizer) and bound it.
pub fn tokenize_prompt(
    tokenizer: &Tokenizer,
    text: &str,
    param: &str,
    limits: &LimitSettings,
) -> Result<Vec<u32>, ApiError> {
    let enc = tokenizer
        .encode(text, false)
        .map_err(|e| ApiError::Internal(format!("tokenizer: {e}")))?;
    let ids = enc.get_ids().to_vec();
    if ids.len() > limits.max_prompt_tokens {
        return Err(ApiError::PromptTooLong {
            param: param.to_string(),
            prompt_tokens: ids.len(),
            limit: limits.max_prompt_tokens,
        });
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_named_with_the_value() {
        let l = LimitSettings::default();
        let e = SamplingInput {
            max_tokens: Some(("max_tokens", 5000)),
            ..Default::default()
        }
        .validate(&l, 0.0)
        .expect_err("bad");
        assert_eq!(
            e.to_string(),
            "max_tokens must be between 1 and 1024, got 5000"
        );
        let e = SamplingInput {
            temperature: Some(2.5),
            ..Default::default()
        }
        .validate(&l, 0.0)
        .expect_err("bad");
        assert_eq!(e.param().as_deref(), Some("temperature"));
        let ok = SamplingInput {
            stop: Some(StopInput::One("x".into())),
            top_k: Some(0),
            ..Default::default()
        }
        .validate(&l, 1.0)
        .expect("ok");
        assert_eq!(
            (ok.max_tokens, ok.stop.len(), ok.params.top_k),
            (256, 1, None)
        );
    }
}
