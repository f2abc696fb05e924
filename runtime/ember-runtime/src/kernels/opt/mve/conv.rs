//! Convolution: receptive fields inside the input gathered row by row by
//! vector copies ([`gather_rows`], [`run`]).

use core::arch::asm;

use crate::kernels::opt::epilogue::Epilogue;
use crate::kernels::opt::im2col::{field, is_pointwise};
use crate::kernels::opt::rows::row_times_filters;
use crate::kernels::{taps, Shape4, Window};

/// Gathers `rows` runs of `run` bytes, the first at `x[base..]` and each
/// next `stride` bytes further, one after another into `dst` (the
/// receptive field of a window that lies inside the input), sixteen bytes
/// per tail-predicated `VLDRB`/`VSTRB` pair, all rows in one `asm!`.
/// Returns the field (`dst[..rows·run]`), or `None` when a slice is too
/// short (nothing is written then).
pub fn gather_rows<'a>(
    x: &[i8],
    base: usize,
    stride: usize,
    run: usize,
    rows: usize,
    dst: &'a mut [i8],
) -> Option<&'a [i8]> {
    let total = rows.checked_mul(run)?;
    let end = rows
        .checked_sub(1)?
        .checked_mul(stride)?
        .checked_add(base)?
        .checked_add(run)?;
    if end > x.len() || total > dst.len() || run == 0 {
        return None;
    }
    // SAFETY: row `r < rows` reads `x[base + r·stride..][..run]`, inside
    // `x` (`base + (rows − 1)·stride + run ≤ x.len()`), and writes
    // `dst[r·run..][..run]`, inside `dst` (`rows·run ≤ dst.len()`); the
    // predicated loads and stores touch no byte past each run. Only the
    // declared registers are written. Compiled only with the `mve`
    // feature on 32-bit Arm.
    unsafe {
        asm!(
            "3:",
            "mov {s}, {src}",
            "mov lr, {run}",
            "dlstp.8 lr, lr",
            "2:",
            "vldrb.u8 q0, [{s}], #16",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            "sub {d}, {d}, {pad}",
            "add {src}, {src}, {stride}",
            "subs {n}, {n}, #1",
            "bne 3b",
            src = inout(reg) x.as_ptr().add(base) => _,
            s = out(reg) _,
            d = inout(reg) dst.as_mut_ptr() => _,
            run = in(reg) run,
            pad = in(reg) run.next_multiple_of(16) - run,
            stride = in(reg) stride,
            n = inout(reg) rows => _,
            out("lr") _,
            out("q0") _,
            options(nostack),
        );
    }
    Some(&dst[..total])
}

/// Whether a convolution's windows can be gathered as whole rows
/// ([`gather_rows`]): not pointwise (its row is in place
/// already) and with unit horizontal dilation.
fn rows_in_place(ws: Shape4, win: &Window) -> bool {
    !is_pointwise(ws, win) && win.dil_w == 1
}

/// The Helium convolution: windows inside the input are gathered as whole
/// rows by vector copies (no padding logic), walking the output rows so
/// that the vertical taps are worked out once per row; the others into
/// `patch` as everywhere. Returns `false`, having written nothing, when the
/// windows are not gathered as rows (see [`rows_in_place`]): the caller
/// then runs the portable loop.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<E: Epilogue>(
    x: &[i8],
    xs: Shape4,
    w: &[i8],
    ws: Shape4,
    folded_bias: &[i32],
    e: E,
    zp: i8,
    win: &Window,
    patch: &mut [i8],
    y: &mut [i8],
    ys: Shape4,
) -> bool {
    if !rows_in_place(ws, win) {
        return false;
    }
    let co = ws.n;
    let k = ws.h * ws.w * xs.c;
    let (run, stride) = (ws.w * xs.c, win.dil_h * xs.w * xs.c);
    // The output columns whose windows lie inside the input
    // horizontally (a contiguous range), worked out once per layer so
    // that the pixel loop only steps the input offset.
    let col_inside = |ox: usize| {
        let (kx0, kx1, _) = taps(ox, win.stride_w, win.dil_w, win.pad_left, ws.w, xs.w);
        kx0 == 0 && kx1 == ws.w
    };
    let ox_lo = (0..ys.w).find(|&ox| col_inside(ox)).unwrap_or(ys.w);
    let ox_hi = (ox_lo..ys.w).find(|&ox| !col_inside(ox)).unwrap_or(ys.w);
    let mut pix = 0;
    for b in 0..ys.n {
        for oy in 0..ys.h {
            let (ky0, ky1, iy0) = taps(oy, win.stride_h, win.dil_h, win.pad_top, ws.h, xs.h);
            let row_inside = ky0 == 0 && ky1 == ws.h;
            let row_base = (b * xs.h + iy0) * xs.w;
            for ox in 0..ys.w {
                let inside = row_inside && (ox_lo..ox_hi).contains(&ox);
                let out = &mut y[pix * co..(pix + 1) * co];
                let gathered = if inside {
                    // Inside columns start at or past the padding.
                    let ix0 = (ox * win.stride_w).saturating_sub(win.pad_left);
                    let base = (row_base + ix0) * xs.c;
                    gather_rows(x, base, stride, run, ws.h, patch)
                } else {
                    None
                };
                let f = match gathered {
                    Some(f) => f,
                    None => field(x, xs, ws, win, zp, ys, pix, patch),
                };
                row_times_filters(f, w, k, folded_bias, e, out);
                pix += 1;
            }
        }
    }
    true
}
