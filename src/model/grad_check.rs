//! Test helper: two computations' gradients of the same variables agree.
use candle_core::backprop::GradStore;
use candle_core::{Result, Var};

/// Asserts that `ours` and `theirs` hold a non-zero gradient for each named variable and that
/// they differ by less than `rel` of the reference's largest magnitude (at least 1).
pub fn assert_same_gradients(
    ours: &GradStore,
    theirs: &GradStore,
    vars: &[(&str, &Var)],
    rel: f32,
) -> Result<()> {
    for (name, v) in vars {
        let (Some(a), Some(b)) = (ours.get(v.as_tensor()), theirs.get(v.as_tensor())) else {
            panic!("missing gradient of {name}");
        };
        let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = b.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(scale > 0.0, "gradient of {name} is zero");
        assert!(
            d < rel * scale.max(1.0),
            "gradient of {name} differs by {d} (scale {scale})"
        );
    }
    Ok(())
}
