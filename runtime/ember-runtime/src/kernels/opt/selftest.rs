//! Generated-case equivalence check: random shapes, strides, paddings,
//! dilations, zero points, multipliers and activation bounds, each run
//! through the reference kernel and the optimized one, outputs compared
//! byte for byte. `no_std` and allocation-free (the caller lends the
//! buffers), so the same cases run in host tests and on the simulated
//! boards (`ember-kernel-check` firmware), where the optimized path is the
//! board's instruction set.

use super::super::elementwise::{add_params_s8, add_s8};
use super::super::pool::{avg_pool_s8_zp, PoolParams};
use super::super::resize::{resize_nearest, resize_s8};
use super::super::unary::lut_8;
use super::super::{
    conv::conv2d_s8, depthwise_conv::depthwise_conv2d_s8, fully_connected::fully_connected_s8,
    QuantIo, Requant, Shape4, Window,
};
use super::super::{quant::multiply_by_quantized_multiplier, sat_i8};
use super::elementwise::add_s8_opt;
use super::lut::{lut_8_inplace_opt, lut_8_opt};
use super::pool::global_avg_pool_s8_opt;
use super::resize::{resize_nearest_opt, resize_s8_opt};
use super::{
    conv::{conv2d_s8_opt, conv2d_s8_opt_scratch_size},
    depthwise_conv::{depthwise_conv2d_s8_opt, depthwise_conv2d_s8_opt_scratch_size},
    dsp_weights_len, fold_bias,
    fully_connected::fully_connected_s8_opt,
    pack_weights_dsp, pack_weights_s16, packed_weights_len, requant_blocks,
};
use crate::error::{Error, Result};

/// xorshift64* — deterministic, tiny, good enough for test shapes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1) as u64;
        lo + (self.next_u64() % span) as i64
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// Which kernel a case exercised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CaseKind {
    /// Convolution, pointwise (1×1, stride 1, no padding).
    Pointwise,
    /// Convolution through the gathered receptive field.
    Conv,
    /// Depthwise convolution.
    Depthwise,
    /// Fully connected.
    FullyConnected,
    /// The requantization epilogue alone (four channels at a time, with
    /// the blocked table) on random and extreme accumulators.
    Requantize,
    /// Element-wise int8 Add (same shapes).
    Add,
    /// Global average pooling.
    GlobalAvgPool,
    /// Byte table lookup (the int8 activations).
    Lut,
    /// Nearest-neighbour resize of int8 data (random per-axis tables,
    /// points outside the input included).
    ResizeNearest,
    /// Interpolating resize of int8 data (random 2- to 4-tap tables on
    /// the last two axes, now and then on an outer one too).
    ResizeBlend,
    /// Raw int32 sums of one int8 row against four rows (the dynamically
    /// quantized fully connected's products), any length.
    Dot4,
}

/// The outcome of one case.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CaseReport {
    /// Kernel.
    pub kind: CaseKind,
    /// Input `[N, H, W, C]` (fully connected: `[rows, 1, 1, K]`).
    pub input: [u32; 4],
    /// Filter `[Co, Kh, Kw, Ci]` (fully connected: `[N, 1, 1, K]`;
    /// resize: the output dims).
    pub filter: [u32; 4],
    /// Stride, dilation, top/left padding (vertical); table lookup: the
    /// input's start offset, then zeros.
    pub geometry: [u32; 4],
    /// Output bytes compared.
    pub outputs: u32,
    /// Output bytes that differ (0 = bit-exact).
    pub mismatches: u32,
}

/// Buffers a case may use; their sizes bound the shapes generated.
pub struct Workspace<'a> {
    /// Input activations.
    pub x: &'a mut [i8],
    /// Weights.
    pub w: &'a mut [i8],
    /// Bias, folded bias and requant pairs (at least 4 × max channels).
    pub words: &'a mut [i32],
    /// Reference output.
    pub y_ref: &'a mut [i8],
    /// Optimized output.
    pub y_opt: &'a mut [i8],
    /// Optimized kernels' scratch.
    pub scratch: &'a mut [i8],
    /// A convolution filter packed for the NEON kernel (as long as `w`).
    pub packed: &'a mut [i16],
}

const CHANNELS: [usize; 10] = [1, 3, 4, 7, 8, 16, 17, 24, 32, 33];

/// Pointwise shapes past the small channel counts: rows of 65 to 128
/// bytes and 128 or more output channels (the Helium kernel's two-chunk
/// passes), on a few pixels.
const WIDE_IN: [usize; 4] = [65, 80, 96, 128];
const WIDE_OUT: [usize; 2] = [128, 132];

fn fill(rng: &mut Rng, v: &mut [i8]) {
    for b in v {
        *b = rng.range(-128, 127) as i8;
    }
}

/// Runs case number `seed`: picks a kernel and parameters that fit in the
/// workspace, runs both implementations and counts differing output bytes.
/// `Err` only if the workspace is too small for even the smallest case.
pub fn run_case(seed: u64, ws: &mut Workspace<'_>) -> Result<CaseReport> {
    let mut rng = Rng::new(seed);
    let kind = rng.pick(&[
        CaseKind::Pointwise,
        CaseKind::Conv,
        CaseKind::Depthwise,
        CaseKind::FullyConnected,
        CaseKind::Requantize,
        CaseKind::Add,
        CaseKind::GlobalAvgPool,
        CaseKind::Lut,
        CaseKind::ResizeNearest,
        CaseKind::ResizeBlend,
        CaseKind::Dot4,
    ]);
    if kind == CaseKind::Dot4 {
        return dot4_case(&mut rng, ws);
    }
    if matches!(kind, CaseKind::ResizeNearest | CaseKind::ResizeBlend) {
        return resize_case(&mut rng, ws, kind == CaseKind::ResizeBlend);
    }
    if kind == CaseKind::Lut {
        return lut_case(&mut rng, ws);
    }
    if kind == CaseKind::GlobalAvgPool {
        return pool_case(&mut rng, ws);
    }
    if kind == CaseKind::Requantize {
        return requantize_case(&mut rng, ws);
    }
    if kind == CaseKind::Add {
        return add_case(&mut rng, ws);
    }
    for _attempt in 0..64 {
        if let Some(r) = try_case(&mut rng, kind, ws)? {
            return Ok(r);
        }
    }
    Err(Error::ShapeMismatch("selftest: workspace too small"))
}

fn quant(rng: &mut Rng) -> QuantIo {
    let in_zp = rng.range(-128, 127) as i32;
    let out_zp = rng.range(-128, 127) as i32;
    let (act_min, act_max) = if rng.range(0, 2) == 0 {
        (-128, 127)
    } else {
        let lo = rng.range(-128, 0) as i32;
        (lo, rng.range(lo as i64, 127) as i32)
    };
    QuantIo {
        in_zp,
        out_zp,
        act_min,
        act_max,
    }
}

fn requant_pairs(rng: &mut Rng, pairs: &mut [i32]) {
    for p in pairs.chunks_exact_mut(2) {
        p[0] = rng.range(1 << 30, i32::MAX as i64) as i32;
        p[1] = rng.range(-14, 1) as i32;
    }
}

fn pool_case(rng: &mut Rng, ws: &mut Workspace<'_>) -> Result<CaseReport> {
    // Draw shapes until one fits the workspace.
    let mut xs = Shape4::new(1, 1, 1, 1);
    for _ in 0..64 {
        let s = Shape4::new(
            rng.range(1, 2) as usize,
            rng.range(1, 12) as usize,
            rng.range(1, 12) as usize,
            rng.pick(&[1, 3, 8, 17, 64, 65, 100]),
        );
        if s.numel().unwrap_or(usize::MAX) <= ws.x.len() {
            xs = s;
            break;
        }
    }
    let ys = Shape4::new(xs.n, 1, 1, xs.c);
    let (nx, ny) = (xs.numel().unwrap_or(0), ys.numel().unwrap_or(0));
    if nx > ws.x.len() || ny > ws.y_ref.len() || ny > ws.y_opt.len() {
        return Err(Error::ShapeMismatch("selftest: workspace too small"));
    }
    let q = quant(rng);
    let onnx = rng.range(0, 1) == 1;
    let zp = if onnx { q.in_zp } else { 0 };
    fill(rng, &mut ws.x[..nx]);
    let p = PoolParams {
        kh: xs.h,
        kw: xs.w,
        win: Window {
            stride_h: 1,
            stride_w: 1,
            dil_h: 1,
            dil_w: 1,
            ..Window::default()
        },
        count_include_pad: false,
    };
    let x = &ws.x[..nx];
    avg_pool_s8_zp(
        x,
        xs,
        &p,
        onnx,
        zp,
        q.act_min,
        q.act_max,
        &mut ws.y_ref[..ny],
        ys,
    )?;
    ws.y_opt[..ny].fill(0x55);
    global_avg_pool_s8_opt(
        x,
        xs,
        onnx,
        zp,
        q.act_min,
        q.act_max,
        &mut ws.y_opt[..ny],
        ys,
    )?;
    let mismatches = ws.y_ref[..ny]
        .iter()
        .zip(&ws.y_opt[..ny])
        .filter(|(r, o)| r != o)
        .count();
    let d = |s: Shape4| [s.n as u32, s.h as u32, s.w as u32, s.c as u32];
    Ok(CaseReport {
        kind: CaseKind::GlobalAvgPool,
        input: d(xs),
        filter: [0; 4],
        geometry: [0; 4],
        outputs: ny as u32,
        mismatches: mismatches as u32,
    })
}

fn add_case(rng: &mut Rng, ws: &mut Workspace<'_>) -> Result<CaseReport> {
    let n = (rng.range(1, 600) as usize)
        .min(ws.x.len())
        .min(ws.y_ref.len());
    if n > ws.w.len() || n > ws.y_opt.len() {
        return Err(Error::ShapeMismatch("selftest: workspace too small"));
    }
    let q = quant(rng);
    let scale = |rng: &mut Rng| (rng.range(1, 1000) as f32) / 4096.0;
    let (sa, sb, so) = (scale(rng), scale(rng), scale(rng));
    let bzp = rng.range(-128, 127) as i32;
    let mut p = add_params_s8(sa, q.in_zp, sb, bzp, so, q.out_zp, q.act_min, q.act_max);
    // TFLite's parameters always shift every term right; now and then a
    // shift of zero or a left one, which the Helium Add handles on its
    // longer path.
    if rng.range(0, 3) == 0 {
        p.a_shift = rng.range(-2, 0) as i32;
        p.left_shift = rng.range(8, 20) as i32;
        p.out_shift = rng.range(-12, 2) as i32;
        p.out_mult = rng.range(1 << 20, 1 << 30) as i32;
    }
    fill(rng, &mut ws.x[..n]);
    fill(rng, &mut ws.w[..n]);
    let (a, b) = (&ws.x[..n], &ws.w[..n]);
    let dims = [n];
    add_s8(a, &dims, b, &dims, &p, &mut ws.y_ref[..n], &dims)?;
    ws.y_opt[..n].fill(0x55);
    add_s8_opt(a, b, &p, &mut ws.y_opt[..n])?;
    let mismatches = ws.y_ref[..n]
        .iter()
        .zip(&ws.y_opt[..n])
        .filter(|(r, o)| r != o)
        .count();
    Ok(CaseReport {
        kind: CaseKind::Add,
        input: [1, 1, 1, n as u32],
        filter: [0; 4],
        geometry: [0; 4],
        outputs: n as u32,
        mismatches: mismatches as u32,
    })
}

/// A random table over random bytes, the input starting at a random
/// offset (the vector paths' unaligned starts) and of any length (their
/// tails).
fn lut_case(rng: &mut Rng, ws: &mut Workspace<'_>) -> Result<CaseReport> {
    let start = rng.range(0, 15) as usize;
    let n = (rng.range(1, 700) as usize)
        .min(ws.x.len().saturating_sub(start))
        .min(ws.y_ref.len())
        .min(ws.y_opt.len());
    if n == 0 || ws.w.len() < 256 {
        return Err(Error::ShapeMismatch("selftest: workspace too small"));
    }
    fill(rng, &mut ws.x[start..start + n]);
    fill(rng, &mut ws.w[..256]);
    let x: &[u8] = bytemuck::cast_slice(&ws.x[start..start + n]);
    let table: &[u8] = bytemuck::cast_slice(&ws.w[..256]);
    lut_8(x, table, bytemuck::cast_slice_mut(&mut ws.y_ref[..n]))?;
    ws.y_opt[..n].fill(0x55);
    lut_8_opt(x, table, bytemuck::cast_slice_mut(&mut ws.y_opt[..n]))?;
    let mut mismatches = ws.y_ref[..n]
        .iter()
        .zip(&ws.y_opt[..n])
        .filter(|(r, o)| r != o)
        .count();
    // In place, as a convolution with a fused table runs it.
    ws.y_opt[..n].copy_from_slice(&ws.x[start..start + n]);
    let table: &[u8; 256] = table
        .try_into()
        .map_err(|_| Error::ShapeMismatch("selftest: table"))?;
    lut_8_inplace_opt(bytemuck::cast_slice_mut(&mut ws.y_opt[..n]), table);
    mismatches += ws.y_ref[..n]
        .iter()
        .zip(&ws.y_opt[..n])
        .filter(|(r, o)| r != o)
        .count();
    Ok(CaseReport {
        kind: CaseKind::Lut,
        input: [1, 1, 1, n as u32],
        filter: [0; 4],
        geometry: [start as u32, 0, 0, 0],
        outputs: n as u32,
        mismatches: mismatches as u32,
    })
}

/// A random rank-1 to rank-4 resize: each output coordinate of each axis
/// reads a random input coordinate (upscales repeat them, which the
/// optimized kernel turns into row copies) or, now and then, none (the
/// extrapolation value).
///
/// `blend`: tables of 2 to 4 taps with random weights (some zero) on the
/// last two axes and one tap of weight 1 on the others, except now and
/// then (the optimized kernel's fallback); int8 in and out with random
/// quantizations.
fn resize_case(rng: &mut Rng, ws: &mut Workspace<'_>, blend: bool) -> Result<CaseReport> {
    let rank = rng.range(1, 4) as usize;
    let (mut xd, mut yd) = ([1usize; 4], [1usize; 4]);
    for d in 0..rank {
        xd[d] = rng.range(1, 9) as usize;
        yd[d] = rng.range(1, 17) as usize;
    }
    // Shrink the largest output axis until the output fits the buffers.
    let cap = ws.y_ref.len().min(ws.y_opt.len());
    while yd.iter().product::<usize>() > cap {
        let big = (0..4).max_by_key(|&d| yd[d]).unwrap_or(0);
        yd[big] = (yd[big] / 2).max(1);
    }
    let (xd, yd) = (&xd[..rank], &yd[..rank]);
    let (nx, ny): (usize, usize) = (xd.iter().product(), yd.iter().product());
    let taps = if blend { rng.range(2, 4) as usize } else { 1 };
    let words: usize = yd.iter().map(|&d| 2 * taps * d).sum();
    if nx > ws.x.len() || ny > ws.y_ref.len() || ny > ws.y_opt.len() || words > ws.words.len() {
        return Err(Error::ShapeMismatch("selftest: workspace too small"));
    }
    let mut at = 0;
    let upscale = rng.range(0, 1) == 1;
    let outer_blends = rng.range(0, 7) == 0;
    for d in 0..rank {
        let blends = blend && (d + 2 >= rank || outer_blends);
        for o in 0..yd[d] {
            let e = &mut ws.words[at..at + 2 * taps];
            if rng.range(0, 15) == 0 {
                e.fill(0);
                e[..taps].fill(-1);
            } else {
                for t in 0..taps {
                    e[t] = if upscale && t == 0 {
                        (o * xd[d] / yd[d]) as i32
                    } else {
                        rng.range(0, xd[d] as i64 - 1) as i32
                    };
                    let w = match (blends, t) {
                        (false, 0) => 1.0,
                        (false, _) => 0.0,
                        _ if rng.range(0, 5) == 0 => 0.0,
                        _ => rng.range(-300, 1300) as f32 / 1024.0,
                    };
                    e[taps + t] = w.to_bits() as i32;
                }
            }
            at += 2 * taps;
        }
    }
    fill(rng, &mut ws.x[..nx]);
    let e = rng.range(-128, 127) as i8;
    let (x, t) = (&ws.x[..nx], &ws.words[..words]);
    ws.y_opt[..ny].fill(0x55);
    if blend {
        let xq = (
            rng.range(1, 100) as f32 / 997.0,
            rng.range(-128, 127) as i32,
        );
        let yq = (
            rng.range(1, 100) as f32 / 991.0,
            rng.range(-128, 127) as i32,
        );
        let ex = e as f32 / 16.0;
        resize_s8(x, xd, xq, t, taps, ex, &mut ws.y_ref[..ny], yd, yq)?;
        resize_s8_opt(x, xd, xq, t, taps, ex, &mut ws.y_opt[..ny], yd, yq)?;
    } else {
        resize_nearest(x, xd, t, e, &mut ws.y_ref[..ny], yd)?;
        resize_nearest_opt(x, xd, t, e, &mut ws.y_opt[..ny], yd)?;
    }
    let mismatches = ws.y_ref[..ny]
        .iter()
        .zip(&ws.y_opt[..ny])
        .filter(|(r, o)| r != o)
        .count();
    let dims4 = |d: &[usize]| {
        let mut a = [1u32; 4];
        for (o, &v) in a.iter_mut().zip(d) {
            *o = v as u32;
        }
        a
    };
    Ok(CaseReport {
        kind: if blend {
            CaseKind::ResizeBlend
        } else {
            CaseKind::ResizeNearest
        },
        input: dims4(xd),
        filter: dims4(yd),
        geometry: [0; 4],
        outputs: ny as u32,
        mismatches: mismatches as u32,
    })
}

fn dot4_case(rng: &mut Rng, ws: &mut Workspace<'_>) -> Result<CaseReport> {
    let k = rng.range(1, 300) as usize;
    if k > ws.x.len() || 4 * k > ws.w.len() {
        return Err(Error::ShapeMismatch("selftest: workspace too small"));
    }
    let (x, w) = (&mut ws.x[..k], &mut ws.w[..4 * k]);
    fill(rng, x);
    fill(rng, w);
    // Now and then the extremes, where the int32 sums are largest.
    if rng.range(0, 3) == 0 {
        x.fill(-128);
        w.fill(rng.pick(&[-128, 127]));
    }
    let rows: [&[i8]; 4] = core::array::from_fn(|j| &w[j * k..(j + 1) * k]);
    let got = super::dot::dot4_s8(x, rows[0], rows[1], rows[2], rows[3]);
    let want = super::dot::portable::dot4_s8(x, rows[0], rows[1], rows[2], rows[3]);
    let mismatches = got.iter().zip(&want).filter(|(a, b)| a != b).count() as u32;
    Ok(CaseReport {
        kind: CaseKind::Dot4,
        input: [1, 1, 1, k as u32],
        filter: [4, 1, 1, k as u32],
        geometry: [0; 4],
        outputs: 4,
        mismatches,
    })
}

fn requantize_case(rng: &mut Rng, ws: &mut Workspace<'_>) -> Result<CaseReport> {
    use super::{Epilogue, FixedBlocked, FixedPerChannel};
    let co = 4 * rng.range(1, 8) as usize;
    if 6 * co > ws.words.len() || co > ws.y_ref.len() {
        return Err(Error::ShapeMismatch("selftest: workspace too small"));
    }
    let q = quant(rng);
    let (pairs, rest) = ws.words.split_at_mut(2 * co);
    let (blocks, rest) = rest.split_at_mut(3 * co);
    let accs = &mut rest[..co];
    for p in pairs.chunks_exact_mut(2) {
        p[0] = rng.range(0, i32::MAX as i64) as i32;
        p[1] = rng.range(-31, 30) as i32;
    }
    for a in accs.iter_mut() {
        *a = match rng.range(0, 3) {
            0 => rng.next_u64() as i32,
            1 => rng.pick(&[i32::MIN, i32::MAX, -1, 0, 1, i32::MIN + 1]),
            _ => rng.range(-70_000, 70_000) as i32,
        };
    }
    requant_blocks(pairs, co, blocks);
    let e = FixedBlocked {
        pairs: FixedPerChannel { p: pairs, q },
        blocks,
        plain: false,
    };
    let mut mismatches = 0;
    for (b, a) in accs.chunks_exact(4).enumerate() {
        let mut got = [0i8; 4];
        if let Ok(a4) = <[i32; 4]>::try_from(a) {
            e.apply4(a4, 4 * b, &mut got);
        }
        for j in 0..4 {
            let ch = 4 * b + j;
            let v = multiply_by_quantized_multiplier(a[j], pairs[2 * ch], pairs[2 * ch + 1]);
            let want = sat_i8(v.saturating_add(q.out_zp), q.act_min, q.act_max);
            mismatches += u32::from(got[j] != want);
        }
    }
    Ok(CaseReport {
        kind: CaseKind::Requantize,
        input: [1, 1, 1, co as u32],
        filter: [0; 4],
        geometry: [0; 4],
        outputs: co as u32,
        mismatches,
    })
}

fn try_case(rng: &mut Rng, kind: CaseKind, ws: &mut Workspace<'_>) -> Result<Option<CaseReport>> {
    let q = quant(rng);
    let wide = kind == CaseKind::Pointwise && rng.range(0, 3) == 0;
    let (n, h, wd) = if wide {
        (1, rng.range(1, 3) as usize, rng.range(1, 3) as usize)
    } else {
        (
            rng.range(1, 2) as usize,
            rng.range(1, 9) as usize,
            rng.range(1, 9) as usize,
        )
    };
    let ci = rng.pick(if wide { &WIDE_IN[..] } else { &CHANNELS[..] });
    let (k_h, k_w) = match kind {
        CaseKind::Pointwise | CaseKind::FullyConnected => (1, 1),
        _ => (rng.range(1, 5) as usize, rng.range(1, 5) as usize),
    };
    let win = match kind {
        CaseKind::Pointwise | CaseKind::FullyConnected => Window {
            stride_h: 1,
            stride_w: 1,
            dil_h: 1,
            dil_w: 1,
            ..Window::default()
        },
        _ => Window {
            stride_h: rng.range(1, 3) as usize,
            stride_w: rng.range(1, 3) as usize,
            dil_h: rng.range(1, 2) as usize,
            dil_w: rng.range(1, 2) as usize,
            pad_top: rng.range(0, 2) as usize,
            pad_left: rng.range(0, 2) as usize,
            pad_bottom: rng.range(0, 2) as usize,
            pad_right: rng.range(0, 2) as usize,
        },
    };
    let co = match kind {
        CaseKind::Depthwise => ci,
        _ if wide => rng.pick(&WIDE_OUT),
        _ => rng.pick(&CHANNELS),
    };
    let xs = Shape4::new(n, h, wd, ci);
    let fs = match kind {
        CaseKind::Depthwise => Shape4::new(1, k_h, k_w, co),
        _ => Shape4::new(co, k_h, k_w, ci),
    };
    let Some((oh, ow)) = win.out_hw(h, wd, k_h, k_w) else {
        return Ok(None);
    };
    let ys = Shape4::new(n, oh, ow, co);
    let (nx, nw, ny) = (
        xs.numel().unwrap_or(usize::MAX),
        fs.numel().unwrap_or(usize::MAX),
        ys.numel().unwrap_or(usize::MAX),
    );
    let scratch_need = match kind {
        CaseKind::Depthwise => depthwise_conv2d_s8_opt_scratch_size(co),
        CaseKind::FullyConnected => 0,
        // Alternate between the plain and the wide (DSP two-pixel) scratch
        // so both paths run where the wide one exists.
        _ => conv2d_s8_opt_scratch_size(fs, &win, rng.range(0, 1) == 1),
    };
    if nx > ws.x.len()
        || nw > ws.w.len()
        || ny > ws.y_ref.len()
        || ny > ws.y_opt.len()
        || 7 * co > ws.words.len()
        || scratch_need > ws.scratch.len()
    {
        return Ok(None);
    }
    let x = &mut ws.x[..nx];
    let w = &mut ws.w[..nw];
    fill(rng, x);
    fill(rng, w);
    // Half the filters without −128 (TFLite's symmetric int8 weights),
    // which the NEON build's paired row kernel needs.
    if rng.range(0, 1) == 1 {
        for v in w.iter_mut().filter(|v| **v == i8::MIN) {
            *v = -127;
        }
    }
    let (bias, rest) = ws.words.split_at_mut(co);
    let (fb, rest) = rest.split_at_mut(co);
    let per_channel = rng.range(0, 1) == 1;
    let (pairs, blocks) = rest.split_at_mut(2 * co);
    let pairs = &mut pairs[..if per_channel { 2 * co } else { 2 }];
    for b in bias.iter_mut() {
        *b = rng.range(-40_000, 40_000) as i32;
    }
    let with_bias = rng.range(0, 3) != 0;
    requant_pairs(rng, pairs);
    // Half the tables shift every channel right (TFLite's usual case),
    // which the Helium kernels requantize by a shorter sequence.
    if rng.range(0, 1) == 1 {
        for p in pairs.chunks_exact_mut(2) {
            p[1] = p[1].min(-1);
        }
        // Now and then one multiplier below TFLite's normalized range,
        // which keeps the Cortex-M DSP kernels off their short sequence.
        if rng.range(0, 7) == 0 {
            let ch = rng.range(0, (pairs.len() / 2).max(1) as i64 - 1) as usize;
            if let Some(m) = pairs.get_mut(2 * ch) {
                *m = rng.range(0, (1 << 30) - 1) as i32;
            }
        }
    }
    let blocks = &mut blocks[..co / 4 * super::REQUANT_BLOCK_WORDS];
    let blocked = per_channel && rng.range(0, 1) == 1;
    if blocked {
        requant_blocks(pairs, co, blocks);
    }
    let (pairs, blocks): (&[i32], &[i32]) = (pairs, blocks);
    let conv_rq = if blocked {
        Requant::FixedBlocked { pairs, blocks }
    } else {
        Requant::Fixed(pairs)
    };
    let bias: Option<&[i32]> = if with_bias { Some(bias) } else { None };
    let (x, w): (&[i8], &[i8]) = (x, w);
    fold_bias(bias, w, q.in_zp, kind == CaseKind::Depthwise, fb);
    // A quarter of the convolutions get the NEON-packed filter (the NEON
    // build's lane-per-channel kernel on cores without SDOT), half of them
    // and of the fully connected cases the DSP-widened one (the Cortex-M
    // DSP kernels); each build leaves the other's layout alone.
    let k_len = k_h * k_w * ci;
    let layout = rng.range(0, 3);
    let packed: &[i16] = match kind {
        CaseKind::Pointwise | CaseKind::Conv
            if layout == 1 && packed_weights_len(co, k_len) <= ws.packed.len() =>
        {
            let p = &mut ws.packed[..packed_weights_len(co, k_len)];
            pack_weights_s16(w, co, k_len, p);
            p
        }
        CaseKind::Pointwise | CaseKind::Conv | CaseKind::FullyConnected
            if layout >= 2 && dsp_weights_len(co, k_len) <= ws.packed.len() =>
        {
            let p = &mut ws.packed[..dsp_weights_len(co, k_len)];
            pack_weights_dsp(w, co, k_len, p);
            p
        }
        _ => &[],
    };
    let (y_ref, y_opt) = (&mut ws.y_ref[..ny], &mut ws.y_opt[..ny]);
    y_opt.fill(0x55);
    match kind {
        CaseKind::Pointwise | CaseKind::Conv => {
            let rq = Requant::Fixed(pairs);
            conv2d_s8(x, xs, w, fs, bias, rq, q, &win, 1, y_ref, ys)?;
            conv2d_s8_opt(
                x,
                xs,
                w,
                fs,
                packed,
                fb,
                conv_rq,
                q,
                &win,
                &mut ws.scratch[..scratch_need],
                y_opt,
                ys,
            )?;
        }
        CaseKind::Depthwise => {
            let rq = Requant::Fixed(pairs);
            depthwise_conv2d_s8(x, xs, w, fs, bias, rq, q, &win, 1, y_ref, ys)?;
            depthwise_conv2d_s8_opt(
                x,
                xs,
                w,
                fs,
                fb,
                conv_rq,
                q,
                &win,
                &mut ws.scratch[..scratch_need],
                y_opt,
                ys,
            )?;
        }
        CaseKind::Requantize
        | CaseKind::Add
        | CaseKind::GlobalAvgPool
        | CaseKind::Lut
        | CaseKind::ResizeNearest
        | CaseKind::ResizeBlend
        | CaseKind::Dot4 => return Ok(None),
        CaseKind::FullyConnected => {
            let rq = Requant::FixedSingle(pairs);
            let (rows, k) = (n * h * wd, ci);
            fully_connected_s8(x, rows, k, w, co, 0, bias, rq, q, y_ref)?;
            fully_connected_s8_opt(x, rows, k, w, packed, co, fb, rq, q, y_opt)?;
        }
    }
    let mismatches = y_ref
        .iter()
        .zip(y_opt.iter())
        .filter(|(a, b)| a != b)
        .count();
    let d = |s: Shape4| [s.n as u32, s.h as u32, s.w as u32, s.c as u32];
    Ok(Some(CaseReport {
        kind,
        input: d(xs),
        filter: d(fs),
        geometry: [
            win.stride_h as u32,
            win.dil_h as u32,
            win.pad_top as u32,
            win.pad_left as u32,
        ],
        outputs: ny as u32,
        mismatches: mismatches as u32,
    }))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn optimized_kernels_match_reference_on_generated_cases() {
        let (mut x, mut w, mut words) = (vec![0i8; 8192], vec![0i8; 20480], vec![0i32; 1024]);
        let (mut a, mut b, mut s) = (vec![0i8; 8192], vec![0i8; 8192], vec![0i8; 8192]);
        let mut packed = vec![0i16; 20480];
        let mut ws = Workspace {
            x: &mut x,
            w: &mut w,
            words: &mut words,
            y_ref: &mut a,
            y_opt: &mut b,
            scratch: &mut s,
            packed: &mut packed,
        };
        let mut seen = [0usize; 11];
        for seed in 0..4400 {
            let r = run_case(seed, &mut ws).unwrap();
            assert_eq!(r.mismatches, 0, "case {seed}: {r:?}");
            assert!(r.outputs > 0);
            seen[r.kind as usize] += 1;
        }
        assert!(seen.iter().all(|&s| s > 300), "{seen:?}");
    }
}
