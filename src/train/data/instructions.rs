//! Instruction paraphrases for "write the report of this ECG", sampled per example.
//!
//! The first two are MEIT's prompts verbatim (as given in our brief; the only public code
//! found, a fork of the MEIT repository, has the variant "Given the corresponding ECG signal
//! embeddings, please help me generate an accurate description for this ECG signal
//! embeddings:" in a commented-out test, kept here as the third entry).

use rand::Rng;

/// MEIT's main prompt; used at inference when the caller gives none.
pub const DEFAULT_INSTRUCTION: &str = "Given the ECG signal embeddings, please help me generate an accurate description for this ECG signal embeddings:";

/// The paraphrase pool (>= 20 entries, MEIT's prompts first).
pub const INSTRUCTIONS: &[&str] = &[
    DEFAULT_INSTRUCTION,
    "Please help me generate an accurate description for this ECG signal embeddings:",
    "Given the corresponding ECG signal embeddings, please help me generate an accurate description for this ECG signal embeddings:",
    "Write the report for this ECG.",
    "Please write the clinical report for this 12-lead ECG.",
    "Generate an accurate ECG report for this recording.",
    "Describe the findings of this ECG.",
    "What does this ECG show? Write the report.",
    "Interpret this 12-lead ECG and write a concise report.",
    "Provide the diagnostic report for this electrocardiogram.",
    "Read this ECG and report the rhythm and any abnormalities.",
    "Summarize this ECG in a short clinical report.",
    "Please describe this electrocardiogram the way a cardiologist would report it.",
    "Generate the machine-style interpretation for this ECG.",
    "Give a brief interpretation of this ECG recording.",
    "Write an ECG report describing rhythm, axis, conduction and repolarization.",
    "Based on the ECG signal embeddings, write the report for this ECG.",
    "Analyze the ECG signal and produce its report.",
    "Create a clinical description of this 10-second 12-lead ECG.",
    "Report the ECG findings for this patient.",
    "Please interpret this ECG.",
    "Produce an accurate textual description of this ECG signal.",
];

/// Picks one instruction uniformly at random.
pub fn sample_instruction<R: Rng + ?Sized>(rng: &mut R) -> &'static str {
    INSTRUCTIONS[rng.random_range(0..INSTRUCTIONS.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn pool_is_large_unique_and_starts_with_meit_prompts() {
        assert!(INSTRUCTIONS.len() >= 20);
        let unique: HashSet<_> = INSTRUCTIONS.iter().collect();
        assert_eq!(unique.len(), INSTRUCTIONS.len());
        assert_eq!(INSTRUCTIONS[0], DEFAULT_INSTRUCTION);
        assert_eq!(
            INSTRUCTIONS[1],
            "Please help me generate an accurate description for this ECG signal embeddings:"
        );
    }

    #[test]
    fn sampling_is_seeded_and_covers_the_pool() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..500)
                .map(|_| sample_instruction(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        let seen: HashSet<_> = draw(7).into_iter().collect();
        assert_eq!(seen.len(), INSTRUCTIONS.len());
    }
}
