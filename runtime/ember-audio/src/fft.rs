//! In-place radix-2 complex FFT with a precomputed twiddle table.

/// Largest supported FFT length.
pub const MAX_FFT: usize = 1024;

/// Twiddle factors for every power-of-two length up to [`MAX_FFT`].
#[derive(Clone)]
pub struct Fft {
    n: usize,
    /// Stage by stage: the stage joining halves of `h` points reads its
    /// `h` twiddles `e^{-iπk/h}` contiguously from index `h − 1`.
    cos: [f32; MAX_FFT],
    sin: [f32; MAX_FFT],
}

impl Fft {
    /// Tables for length `n` (a power of two, 2..=MAX_FFT); `None` otherwise.
    pub fn new(n: usize) -> Option<Fft> {
        if !n.is_power_of_two() || !(2..=MAX_FFT).contains(&n) {
            return None;
        }
        Some(Fft::pow2(n.trailing_zeros()))
    }

    /// Tables for length `2^log2`, with `log2` clamped to `1..=10`.
    pub fn pow2(log2: u32) -> Fft {
        let n = 1usize << log2.clamp(1, MAX_FFT.trailing_zeros());
        Fft::with_stages(n, n)
    }

    /// Length `n` with the twiddles of every stage joining halves shorter
    /// than `up_to` (`n` for the transform itself; `2n` adds the stage a
    /// real transform of `2n` samples untangles its halves with). Both
    /// are powers of two with `up_to ≤ MAX_FFT`.
    fn with_stages(n: usize, up_to: usize) -> Fft {
        let mut f = Fft {
            n,
            cos: [0.0; MAX_FFT],
            sin: [0.0; MAX_FFT],
        };
        let mut h = 1;
        while h < up_to {
            for k in 0..h {
                let a = -core::f64::consts::PI * k as f64 / h as f64;
                f.cos[h - 1 + k] = libm::cos(a) as f32;
                f.sin[h - 1 + k] = libm::sin(a) as f32;
            }
            h *= 2;
        }
        f
    }

    /// Length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Never empty (length ≥ 2).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Forward transform of `re + i·im` (both of length `len()`), in place.
    pub fn forward(&self, re: &mut [f32], im: &mut [f32]) {
        let n = self.n;
        if re.len() != n || im.len() != n {
            return;
        }
        // Bit-reversal permutation.
        let bits = n.trailing_zeros();
        for i in 0..n {
            let j = i.reverse_bits() >> (usize::BITS - bits);
            if j > i {
                re.swap(i, j);
                im.swap(i, j);
            }
        }
        if n < 4 {
            let (r0, r1, i0, i1) = (re[0], re[1], im[0], im[1]);
            (re[0], re[1], im[0], im[1]) = (r0 + r1, r0 - r1, i0 + i1, i0 - i1);
            return;
        }
        // The first two stages at once: their twiddles are 1 and −i, so
        // they need no multiplications (and no per-block bookkeeping for
        // blocks of two and four).
        for (r, i) in re.chunks_exact_mut(4).zip(im.chunks_exact_mut(4)) {
            let (r0, i0, r1, i1) = (r[0] + r[1], i[0] + i[1], r[0] - r[1], i[0] - i[1]);
            let (r2, i2, r3, i3) = (r[2] + r[3], i[2] + i[3], r[2] - r[3], i[2] - i[3]);
            (r[0], i[0], r[2], i[2]) = (r0 + r2, i0 + i2, r0 - r2, i0 - i2);
            // (r3 + i·i3)·(−i) = i3 − i·r3
            (r[1], i[1], r[3], i[3]) = (r1 + i3, i1 - r3, r1 - i3, i1 + r3);
        }
        let mut half = 4;
        while half < n {
            let len = 2 * half;
            let (wr, wi) = (
                self.cos.get(half - 1..len - 1).unwrap_or(&[]),
                self.sin.get(half - 1..len - 1).unwrap_or(&[]),
            );
            if half < 16 {
                // Short blocks: one twiddle at a time across all blocks.
                for (k, (&wr, &wi)) in wr.iter().zip(wi).enumerate() {
                    for (rb, ib) in re.chunks_exact_mut(len).zip(im.chunks_exact_mut(len)) {
                        let (ar, br) = (rb[k], rb[k + half]);
                        let (ai, bi) = (ib[k], ib[k + half]);
                        let tr = br * wr - bi * wi;
                        let ti = br * wi + bi * wr;
                        (rb[k], rb[k + half]) = (ar + tr, ar - tr);
                        (ib[k], ib[k + half]) = (ai + ti, ai - ti);
                    }
                }
            } else {
                // Long blocks: each split into the halves a butterfly
                // joins; slices zipped rather than indexed, so the loop has
                // no bounds checks.
                for (rb, ib) in re.chunks_exact_mut(len).zip(im.chunks_exact_mut(len)) {
                    let (ra, rb) = rb.split_at_mut(half);
                    let (ia, ib) = ib.split_at_mut(half);
                    for ((((ar, ai), br), bi), (&wr, &wi)) in ra
                        .iter_mut()
                        .zip(ia.iter_mut())
                        .zip(rb)
                        .zip(ib)
                        .zip(wr.iter().zip(wi))
                    {
                        let tr = *br * wr - *bi * wi;
                        let ti = *br * wi + *bi * wr;
                        *br = *ar - tr;
                        *bi = *ai - ti;
                        *ar += tr;
                        *ai += ti;
                    }
                }
            }
            half = len;
        }
    }
}

/// The power spectrum of a real signal of `N` samples (a power of two,
/// 4..=[`MAX_FFT`]) by one complex FFT of half the length: the even
/// samples as real parts and the odd ones as imaginary parts, then the
/// halves untangled with one more twiddle per bin. Half the work of a
/// complex FFT of the real signal, the same spectrum up to rounding.
#[derive(Clone)]
pub struct RealFft {
    /// The transform of `N/2` points, its table one stage longer: the
    /// untangling twiddles `e^{-2πik/N}` for `k < N/2` follow its own.
    half: Fft,
}

impl RealFft {
    /// Tables for `n` real samples (a power of two, 4..=MAX_FFT);
    /// `None` otherwise.
    pub fn new(n: usize) -> Option<RealFft> {
        if !n.is_power_of_two() || !(4..=MAX_FFT).contains(&n) {
            return None;
        }
        Some(RealFft::pow2(n.trailing_zeros()))
    }

    /// Tables for `2^log2` samples, with `log2` clamped to `2..=10`.
    pub fn pow2(log2: u32) -> RealFft {
        let n = 1usize << log2.clamp(2, MAX_FFT.trailing_zeros());
        RealFft {
            half: Fft::with_stages(n / 2, n),
        }
    }

    /// Samples it takes.
    pub fn len(&self) -> usize {
        2 * self.half.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `|X[k]|²` of the DFT `X` of `x` (`len()` samples) for `k` in
    /// `0..=len()/2`, into `power` (that long); nothing when the lengths
    /// do not fit. `re`/`im` are the caller's scratch, `len()/2` each.
    pub fn power(&self, x: &[f32], re: &mut [f32], im: &mut [f32], power: &mut [f32]) {
        let m = self.half.len();
        if x.len() != 2 * m || re.len() != m || im.len() != m || power.len() != m + 1 {
            return;
        }
        for ((pair, r), i) in x.chunks_exact(2).zip(re.iter_mut()).zip(im.iter_mut()) {
            *r = pair[0];
            *i = pair[1];
        }
        self.half.forward(re, im);
        // Z = FFT(z); with E = (Z[k] + conj Z[m−k]) / 2 and
        // O = (Z[k] − conj Z[m−k]) / 2i, X[k] = E + e^{-2πik/N}·O.
        power[0] = (re[0] + im[0]) * (re[0] + im[0]);
        power[m] = (re[0] - im[0]) * (re[0] - im[0]);
        for k in 1..m {
            let (zr, zi) = (re[k], im[k]);
            let (cr, ci) = (re[m - k], -im[m - k]);
            let (er, ei) = (0.5 * (zr + cr), 0.5 * (zi + ci));
            // (a + ib) / 2i = (b − ia) / 2
            let (or, oi) = (0.5 * (zi - ci), -0.5 * (zr - cr));
            let (wr, wi) = (self.half.cos[m - 1 + k], self.half.sin[m - 1 + k]);
            let xr = er + wr * or - wi * oi;
            let xi = ei + wr * oi + wi * or;
            power[k] = xr * xr + xi * xi;
        }
    }
}

/// Square root: the FPU's `VSQRT.F32` on hard-float Arm cores (libm's is
/// a software loop there), libm elsewhere.
#[inline]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    {
        let bits: u32;
        // SAFETY: every hard-float Arm core (FPv4-SP on the M4, FPv5 on
        // the M7/M33/M55) has VSQRT.F32. Rust only lets `asm!` name
        // single-precision registers where double precision exists too,
        // so the value travels in a core register and s0 is saved on the
        // stack and restored around it: nothing the compiler holds is
        // changed but the FPU's cumulative exception flags.
        unsafe {
            core::arch::asm!(
                "vpush {{s0}}",
                "vmov s0, {v}",
                "vsqrt.f32 s0, s0",
                "vmov {v}, s0",
                "vpop {{s0}}",
                v = inout(reg) x.to_bits() => bits,
                options(nomem, preserves_flags),
            );
        }
        f32::from_bits(bits)
    }
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    {
        libm::sqrtf(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_dft() {
        let n = 64;
        let f = Fft::new(n).unwrap();
        let x: [f32; 64] =
            core::array::from_fn(|i| libm::sinf(i as f32 * 0.3) + (i % 5) as f32 * 0.1);
        let (mut re, mut im) = (x, [0f32; 64]);
        f.forward(&mut re, &mut im);
        for k in 0..n {
            let (mut sr, mut si) = (0f64, 0f64);
            for (t, &v) in x.iter().enumerate() {
                let a = -2.0 * core::f64::consts::PI * (k * t) as f64 / n as f64;
                sr += v as f64 * libm::cos(a);
                si += v as f64 * libm::sin(a);
            }
            assert!(
                (re[k] as f64 - sr).abs() < 1e-4 && (im[k] as f64 - si).abs() < 1e-4,
                "bin {k}"
            );
        }
        assert!(Fft::new(48).is_none());
    }

    #[test]
    fn real_power_matches_the_complex_transform() {
        for n in [4usize, 16, 512, 1024] {
            let f = RealFft::new(n).unwrap();
            let c = Fft::new(n).unwrap();
            let mut x = [0f32; 1024];
            for (i, v) in x.iter_mut().take(n).enumerate() {
                *v = libm::sinf(i as f32 * 0.37) * 0.8 + ((i * 7) % 11) as f32 * 0.03 - 0.1;
            }
            let (mut re, mut im) = ([0f32; 512], [0f32; 512]);
            let mut p = [0f32; 513];
            f.power(
                &x[..n],
                &mut re[..n / 2],
                &mut im[..n / 2],
                &mut p[..n / 2 + 1],
            );
            let (mut cr, mut ci) = (x, [0f32; 1024]);
            c.forward(&mut cr[..n], &mut ci[..n]);
            for k in 0..=n / 2 {
                let want = cr[k] * cr[k] + ci[k] * ci[k];
                assert!(
                    (p[k] - want).abs() <= 1e-4 * want.max(1.0),
                    "n {n} bin {k}: {} vs {want}",
                    p[k]
                );
            }
        }
        assert!(RealFft::new(2).is_none() && RealFft::new(96).is_none());
        assert!(RealFft::new(2048).is_none());
        assert_eq!(sqrt(2.25), 1.5);
    }
}
