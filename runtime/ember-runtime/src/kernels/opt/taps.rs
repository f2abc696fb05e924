//! What the depthwise paths of every instruction set share, and nothing
//! operator- or instruction-set-specific beyond that: the most taps a
//! blocked path takes, and the scalar sums of the channels a vector block
//! leaves over.

/// Most taps the blocked path takes (5×5); larger kernels run channel by
/// channel.
pub(crate) const MAX_TAPS: usize = 25;

// Only the Helium and DSP runs leave channels over.
by_isa! {
    mve or dsp items:

    use super::epilogue::Epilogue;

    /// Channels `from..c` of an interior output pixel one at a time: tap `t`'s
    /// input at `x[px + offs[t]..]`, its weights at `w[t·c..]`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn interior_rest<E: Epilogue>(
        x: &[i8],
        px: usize,
        offs: &[usize],
        w: &[i8],
        c: usize,
        from: usize,
        folded_bias: &[i32],
        e: E,
        o: &mut [i8],
    ) {
        for ch in from..c {
            let mut acc = folded_bias[ch];
            for (t, &off) in offs.iter().enumerate() {
                let (xv, wv) = (x[px + off + ch], w[t * c + ch]);
                acc = acc.wrapping_add((xv as i32).wrapping_mul(wv as i32));
            }
            o[ch] = e.apply(acc, ch);
        }
    }
}
