//! The tokenizer built from the GGUF metadata against HF's (golden ids; HF's converted
//! tokenizer.json on the same texts). Exact equality, no tolerance.
use meit::model::{chat, tokenizer};

use super::common::{fixture, golden_json, ids, smollm};

#[test]
fn reproduces_golden_token_ids_and_decodes_back() {
    let tok = &smollm().backbone.tokenizer;
    let raw = std::fs::read_to_string(fixture("golden/tokenizer.jsonl")).expect("tokenizer.jsonl");
    let mut n = 0;
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).expect("json line");
        let text = case["text"].as_str().expect("text");
        let got = tokenizer::encode(tok, text).expect("encode");
        assert_eq!(got, ids(&case["ids"]), "ids of {text:?}");
        let back = tok.decode(&got, false).expect("decode");
        assert_eq!(
            back,
            case["decoded"].as_str().expect("decoded"),
            "decode of {text:?}"
        );
        n += 1;
    }
    assert!(n >= 5, "only {n} golden cases");
}

#[test]
fn chat_prompts_render_and_tokenize_like_hf() {
    let tok = &smollm().backbone.tokenizer;
    let g = golden_json("llm_prompts.json");
    for p in g["prompts"].as_array().expect("prompts") {
        let text = chat::user_prompt(p["user"].as_str().expect("user"));
        assert_eq!(text, p["text"].as_str().expect("text"));
        assert_eq!(
            tokenizer::encode(tok, &text).expect("encode"),
            ids(&p["ids"])
        );
    }
}

#[test]
fn agrees_with_hf_converted_tokenizer_on_report_texts() {
    let ours = &smollm().backbone.tokenizer;
    let hf = tokenizers::Tokenizer::from_file(fixture("golden/hf_tokenizer.json")).expect("hf");
    let texts = [
        "sinus rhythm. left axis deviation. possible anterior infarct - age undetermined.",
        "Sinusrhythmus Linkstyp  QRS(T) abnorm\tinferiorer Infarkt möglich, alt 4.46",
        "  leading spaces, ÄÖÜ äöü ß, numbers 12345 and 3.14, emoji \u{1F600}\n\nnew lines",
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "V1-V6: ST elevation 0.2mV; QTc=480ms (prolonged)",
    ];
    for t in texts {
        let a = tokenizer::encode(ours, t).expect("ours");
        let b = hf.encode(t, false).expect("hf").get_ids().to_vec();
        assert_eq!(a, b, "ids differ for {t:?}");
        assert_eq!(
            tokenizer::decode(ours, &a).expect("decode"),
            hf.decode(&b, true).expect("hf decode")
        );
    }
}
