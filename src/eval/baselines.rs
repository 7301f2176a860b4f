//! The two baselines of the clinical table:
//! - **mode**: every test record gets the most frequent English report of the training folds;
//! - **retrieval**: every test record gets the report of the training record whose encoder
//!   embedding (`MeitModel::encode_ecg`, the `P x D` ECG vectors flattened) has the highest
//!   cosine similarity with its own. With an untrained encoder the embeddings are random
//!   features of the signal, so this baseline is only meaningful with a trained adapter.

use crate::model::bundle::MeitModel;
use crate::signal::TARGET_LEN;

use super::EvalError;

/// The flattened, L2-normalised encoder embedding of one preprocessed record.
pub fn embed(model: &MeitModel, ecg: &[f32]) -> Result<Vec<f32>, EvalError> {
    let t = model.encode_ecg(ecg, TARGET_LEN)?;
    let v: Vec<f32> = t
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(crate::model::ModelError::from)?;
    Ok(l2_normalize(v))
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn l2_normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Index of the most similar candidate (cosine of unit vectors = dot product); ties go to
/// the lower index. None when there are no candidates.
pub fn nearest(candidates: &[Vec<f32>], query: &[f32]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, c) in candidates.iter().enumerate() {
        let s: f32 = c.iter().zip(query).map(|(a, b)| a * b).sum();
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_by_cosine() {
        let c = vec![
            l2_normalize(vec![1.0, 0.0]),
            l2_normalize(vec![1.0, 1.0]),
            l2_normalize(vec![0.0, 1.0]),
        ];
        assert_eq!(
            nearest(&c, &l2_normalize(vec![0.1, 1.0])).map(|x| x.0),
            Some(2)
        );
        assert_eq!(
            nearest(&c, &l2_normalize(vec![1.0, 0.9])).map(|x| x.0),
            Some(1)
        );
        assert_eq!(nearest(&[], &[1.0]), None);
    }
}
