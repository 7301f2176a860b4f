//! Reading the f32 data of CPU storages and tensors in place, for custom ops.
use candle_core::{CpuStorage, Layout, Storage, Tensor};

/// The contiguous f32 data of a storage; `op` names the caller in the error.
pub(crate) fn slice_of<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: input not contiguous")))?;
    Ok(&s.as_slice::<f32>()?[start..end])
}

/// Runs `f` on the f32 data of `t` (made contiguous), without copying a contiguous tensor.
pub(crate) fn with_data<R>(
    t: &Tensor,
    op: &str,
    f: impl FnOnce(&[f32]) -> R,
) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (st, layout) = t.storage_and_layout();
    match &*st {
        Storage::Cpu(c) => Ok(f(slice_of(c, layout, op)?)),
        _ => Err(candle_core::Error::Msg(format!("{op}: CPU tensors only"))),
    }
}
