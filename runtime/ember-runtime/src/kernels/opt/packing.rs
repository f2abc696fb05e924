//! The compiler's copies of a filter for the optimized kernels, and how
//! the loader checks them: the input zero point folded into the bias, the
//! NEON int16 packing (eight channels per vector) and the Cortex-M DSP
//! widened packing (halfword pairs in `SXTB16` order).

/// Folds the input zero point into a bias: `out[c] = bias[c] − in_zp·Σ w_c`
/// (wrapping, as the reference accumulator), where `w_c` is row `c` of a
/// row-major `[C, K]` filter, or channel `c` of a channel-last filter
/// (`[1, Kh, Kw, C]`, depthwise) when `channel_last`. `C = out.len()`.
/// The compiler calls this; tests use it to build the kernels' inputs.
pub fn fold_bias(bias: Option<&[i32]>, w: &[i8], in_zp: i32, channel_last: bool, out: &mut [i32]) {
    let channels = out.len();
    let row_len = w.len().checked_div(channels).unwrap_or(0);
    for (c, o) in out.iter_mut().enumerate() {
        let sum = if channel_last {
            w.iter()
                .skip(c)
                .step_by(channels)
                .fold(0i32, |a, &v| a.wrapping_add(v as i32))
        } else {
            w[c * row_len..(c + 1) * row_len]
                .iter()
                .fold(0i32, |a, &v| a.wrapping_add(v as i32))
        };
        let b = bias.and_then(|b| b.get(c)).copied().unwrap_or(0);
        *o = b.wrapping_sub(in_zp.wrapping_mul(sum));
    }
}

/// Elements of the filter [`pack_weights_s16`] packs from a `[Co, K]`
/// filter: the whole blocks of eight output channels.
pub fn packed_weights_len(co: usize, k: usize) -> usize {
    (co / 8).saturating_mul(8).saturating_mul(k)
}

/// Packs a row-major `[Co, K]` int8 filter for the NEON matrix kernel:
/// each whole block of eight output channels becomes `[K][8]` int16
/// (channel fastest), so one vector load gives the eight channels'
/// weights for one input element. Channels past the last whole block are
/// left out (the kernel computes them from the filter itself). `out`
/// holds [`packed_weights_len`] elements. The compiler calls this; tests
/// use it to build the kernel's inputs.
pub fn pack_weights_s16(w: &[i8], co: usize, k: usize, out: &mut [i16]) {
    for (b, blk) in out.chunks_exact_mut(8 * k.max(1)).take(co / 8).enumerate() {
        for (kk, lanes) in blk.chunks_exact_mut(8).enumerate() {
            for (j, o) in lanes.iter_mut().enumerate() {
                *o = w.get((8 * b + j) * k + kk).map_or(0, |&v| v as i16);
            }
        }
    }
}

/// Whether `packed` is exactly [`pack_weights_s16`] of `w`.
pub fn packed_weights_match(w: &[i8], co: usize, k: usize, packed: &[i16]) -> bool {
    if packed.len() != packed_weights_len(co, k) || w.len() < co.saturating_mul(k) {
        return false;
    }
    packed
        .chunks_exact(8 * k.max(1))
        .enumerate()
        .all(|(b, blk)| {
            blk.chunks_exact(8).enumerate().all(|(kk, lanes)| {
                lanes
                    .iter()
                    .enumerate()
                    .all(|(j, &v)| w.get((8 * b + j) * k + kk).map(|&x| x as i16) == Some(v))
            })
        })
}

/// The two elements that end a [`pack_weights_dsp`] filter ("DSP1"). They
/// make its length 2 mod 4, never that of a [`pack_weights_s16`] filter
/// (a multiple of 8), so the one packed-weights input tells the two
/// layouts apart by its length.
pub const DSP_WEIGHTS_MARK: [i16; 2] = [0x5344, 0x3150];

/// Elements of the filter [`pack_weights_dsp`] packs from a `[Co, K]`
/// filter: the whole pairs of output channels times the whole groups of
/// four values, plus [`DSP_WEIGHTS_MARK`]; 0 when there is no whole pair
/// or group.
pub fn dsp_weights_len(co: usize, k: usize) -> usize {
    let (pairs, k4) = (co / 2, k / 4 * 4);
    if pairs == 0 || k4 == 0 {
        return 0;
    }
    pairs
        .saturating_mul(2)
        .saturating_mul(k4)
        .saturating_add(DSP_WEIGHTS_MARK.len())
}

/// Packs a row-major `[Co, K]` int8 filter for the DSP (`SMLAD`) kernels,
/// widened to int16 so that the kernel loads weights ready to multiply:
/// for each pair of output channels and each group of four values `w0..w3`
/// of a row, the first row's `[w0, w2, w1, w3]` then the second's — the
/// halfword order `SXTB16` gives the input words — and
/// [`DSP_WEIGHTS_MARK`] at the end. A last odd channel and the values past
/// the last whole group are left out (the kernel takes them from the
/// filter). `out` holds [`dsp_weights_len`] elements. The compiler calls
/// this for the Cortex-M DSP targets; tests use it to build the kernel's
/// inputs.
pub fn pack_weights_dsp(w: &[i8], co: usize, k: usize, out: &mut [i16]) {
    let groups = k / 4;
    let at = |r: usize, i: usize| w.get(r * k + i).map_or(0, |&v| v as i16);
    let body = dsp_weights_len(co, k)
        .saturating_sub(DSP_WEIGHTS_MARK.len())
        .min(out.len());
    for (n, o) in out[..body].iter_mut().enumerate() {
        // Element n: pair, group, row of the pair, position in the group.
        let (pair, rest) = (n / (8 * groups.max(1)), n % (8 * groups.max(1)));
        let (g, rest) = (rest / 8, rest % 8);
        let (row, pos) = (2 * pair + rest / 4, rest % 4);
        *o = at(row, 4 * g + [0, 2, 1, 3][pos]);
    }
    for (o, &m) in out[body..].iter_mut().zip(&DSP_WEIGHTS_MARK) {
        *o = m;
    }
}

/// Whether `packed` is exactly [`pack_weights_dsp`] of `w` (one pass in
/// the packed order, no division per element: the loader runs this on
/// the device for every filter).
pub fn dsp_weights_match(w: &[i8], co: usize, k: usize, packed: &[i16]) -> bool {
    let n = dsp_weights_len(co, k);
    if n == 0 || packed.len() != n || w.len() < co.saturating_mul(k) {
        return false;
    }
    let groups = k / 4;
    let (body, mark) = packed.split_at(n - DSP_WEIGHTS_MARK.len());
    if mark != DSP_WEIGHTS_MARK {
        return false;
    }
    let mut p = body.chunks_exact(4);
    for pair in w.chunks_exact(2 * k).take(co / 2) {
        let (r0, r1) = pair.split_at(k);
        for (g0, g1) in r0.chunks_exact(4).zip(r1.chunks_exact(4)).take(groups) {
            for g in [g0, g1] {
                let Some(q) = p.next() else {
                    return false;
                };
                let want = [g[0] as i16, g[2] as i16, g[1] as i16, g[3] as i16];
                if q != want {
                    return false;
                }
            }
        }
    }
    p.next().is_none()
}
